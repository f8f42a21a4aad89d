// Neurons (specs/models.md "Neurons"): output channels of a conv layer, units of a Linear, the hidden units
// of an LSTM (the pseudo-layers `lstm.l<k>`, whose rows span four gates), and the input features of the
// classifier. One place says which weights a neuron owns, so the defenses' pruning and the analysis'
// gradient slices and ablations agree. Pruning a neuron sets its weights (and bias) to 0, as the GN-FT
// paper defines it for CLC/BLC (Section III-B); a mask re-applied after every step keeps it so.
import { Conv1d, Conv2d, Linear, type Module } from '../nn/index.ts';
import { copyInPlace, mulInPlace, noGrad, type Tensor, tensor, tidy, zeroInPlace } from '../torch/index.ts';

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

export type NeuronLayerKind = 'conv' | 'linear' | 'lstm';

export interface NeuronLayer {
  name: string;
  kind: NeuronLayerKind;
  /** neurons in the layer */
  size: number;
  /** the Conv/Linear module (absent for LSTM units, which are rows of the LSTM's tensors) */
  module?: Module & { weight: Tensor; bias?: Tensor | null };
  /** the tensors whose rows the neurons own, with the rows of neuron n: rowsOf(n) (dim 0) */
  tensors: { name: string; tensor: Tensor; isWeight: boolean }[];
  rowsOf(index: number): number[];
}

export class NeuronLayerError extends Error {}

/** Resolves a neuron layer name of `model` (one of its spec's neuronLayers). */
export function resolveNeuronLayer(model: Module, name: string): NeuronLayer {
  const found = model.namedModules().find(([n]) => n === name);
  if (found) {
    const m = found[1] as Module & { weight?: Tensor; bias?: Tensor | null };
    if (!(isConv(m) || m instanceof Linear) || !m.weight) throw new NeuronLayerError(`'${name}' is not a Conv or Linear layer`);
    const size = m.weight.shape[0];
    const tensors = [{ name: `${name}.weight`, tensor: m.weight, isWeight: true }];
    if (m.bias) tensors.push({ name: `${name}.bias`, tensor: m.bias, isWeight: false });
    return { name, kind: isConv(m) ? 'conv' : 'linear', size, module: m as NeuronLayer['module'], tensors, rowsOf: (n) => [n] };
  }
  const lstm = /^(.*)\.l(\d+)$/.exec(name);
  if (lstm) {
    const [, prefix, k] = lstm;
    const params = new Map(model.namedParameters());
    const names = ['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'].map((p) => `${prefix}.${p}_l${k}`);
    const hh = params.get(names[1]);
    if (hh) {
      const hidden = hh.shape[1];
      const tensors = names.filter((n) => params.has(n)).map((n) => ({ name: n, tensor: params.get(n) as Tensor, isWeight: n.includes('.weight_') }));
      // PyTorch's gate order i, f, g, o: unit n owns rows n, H+n, 2H+n, 3H+n (models/lstm.ts lstmUnitParameters).
      return { name, kind: 'lstm', size: hidden, tensors, rowsOf: (n) => [0, 1, 2, 3].map((g) => g * hidden + n) };
    }
  }
  throw new NeuronLayerError(`the model has no neuron layer '${name}'`);
}

/**
 * Runs fn with neuron `index` of `layer` pruned as the GN-FT paper defines it (Section III-B: its weights
 * set to 0; its bias too), then writes the saved rows back, so the model is bit-identical afterwards
 * (also when fn throws).
 */
export function withNeuronZeroed<T>(layer: NeuronLayer, index: number, fn: () => T): T {
  if (!(Number.isInteger(index) && index >= 0 && index < layer.size)) throw new RangeError(`neuron ${index} is outside [0, ${layer.size}) of ${layer.name}`);
  const rows = layer.rowsOf(index);
  const saved = noGrad(() =>
    layer.tensors.flatMap(({ tensor }) =>
      rows.map((r) => {
        const copy = tidy(() => tensor.select(0, r).clone());
        copy.persistent = true;
        return copy;
      }),
    ),
  );
  noGrad(() => tidy(() => layer.tensors.forEach(({ tensor }) => rows.forEach((r) => zeroInPlace(tensor.select(0, r))))));
  try {
    return fn();
  } finally {
    noGrad(() =>
      tidy(() => {
        let k = 0;
        for (const { tensor } of layer.tensors) for (const r of rows) copyInPlace(tensor.select(0, r), saved[k++]);
      }),
    );
    for (const t of saved) t.dispose();
  }
}
