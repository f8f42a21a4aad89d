// Neurons as defenses address them (specs/models.md "Neurons"): output channels of a conv layer, units of a
// Linear, or the input features of the classifier. Pruning a neuron sets its weights (and bias) to 0, as
// the GN-FT paper defines it for CLC/BLC (Section III-B); a mask re-applied after every step keeps it so.
import { Conv1d, Conv2d, Linear, type Module } from '../nn/index.ts';
import { mulInPlace, noGrad, type Tensor, tensor, tidy } from '../torch/index.ts';

export function moduleAt(model: Module, name: string): Module {
  const found = model.namedModules().find(([n]) => n === name);
  if (!found) throw new Error(`the model has no module '${name}'`);
  return found[1];
}

export const isConv = (m: Module): m is Conv1d | Conv2d => m instanceof Conv1d || m instanceof Conv2d;

/** The last conv layer among the model's neuron layers (the original Fine-Pruning's target), or null. */
export function lastConvLayer(model: Module, neuronLayers: readonly string[]): string | null {
  const convs = neuronLayers.filter((n) => model.namedModules().some(([name, m]) => name === n && isConv(m)));
  return convs.length ? convs[convs.length - 1] : null;
}

/** The classifier: the last Linear in the model that is not one of its neuron layers. */
export function classifierLayer(model: Module, neuronLayers: readonly string[]): string {
  const linears = model.namedModules().filter(([name, m]) => m instanceof Linear && !neuronLayers.includes(name));
  if (!linears.length) throw new Error('the model has no classifier Linear layer');
  return linears[linears.length - 1][0];
}

/** Which slices of which tensors a set of neurons owns. */
export interface NeuronMask {
  layer: string;
  kind: 'output-channels' | 'input-features';
  /** neurons in the layer */
  size: number;
  pruned: number[];
}

/** Multiplies the owned weights by 0 for pruned neurons and 1 for the others (in place, no gradient). */
export function applyMask(model: Module, mask: NeuronMask): void {
  const m = moduleAt(model, mask.layer) as Module & { weight: Tensor; bias?: Tensor | null };
  const keepData = new Float32Array(mask.size).fill(1);
  for (const i of mask.pruned) keepData[i] = 0;
  noGrad(() =>
    tidy(() => {
      if (mask.kind === 'output-channels') {
        const shape = [mask.size, ...m.weight.shape.slice(1).map(() => 1)];
        mulInPlace(m.weight, tensor(keepData, shape));
        if (m.bias) mulInPlace(m.bias, tensor(keepData, [mask.size]));
      } else {
        mulInPlace(m.weight, tensor(keepData, [1, mask.size]));
      }
    }),
  );
}
