// The neuron layers the analysis reads and perturbs (specs/models.md "Neurons"): conv output channels,
// Linear output units, and LSTM hidden units (the pseudo-layers `lstm.l<k>`, whose rows span four gates).
// One place says which weights a neuron owns, so gradient slices and pruning agree.
import { classifierLayer, isConv } from '../defenses/neurons.ts';
import { Linear, type Module } from '../nn/index.ts';
import { copyInPlace, noGrad, type Tensor, tidy, zeroInPlace } from '../torch/index.ts';

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
 * The layers analysed when none are named: the last two conv neuron layers (the GN-FT paper's Fig. 3
 * reads "the last two convolutional layers"); a model with fewer convs (LSTM, KWT) gets its last two
 * neuron layers of any kind.
 */
export function defaultAnalysisLayers(model: Module, neuronLayers: readonly string[]): string[] {
  const kinds = neuronLayers.map((n) => resolveNeuronLayer(model, n).kind);
  const convs = neuronLayers.filter((_, i) => kinds[i] === 'conv');
  return (convs.length >= 2 ? convs : neuronLayers).slice(-2);
}

/** Checks user-named layers against the model's neuron layers; the error lists them. */
export function checkLayers(model: Module, neuronLayers: readonly string[], requested: readonly string[]): string[] {
  if (requested.length === 0) throw new NeuronLayerError('name at least one layer');
  for (const name of requested) {
    if (!neuronLayers.includes(name)) {
      throw new NeuronLayerError(`'${name}' is not a neuron layer of this model; its neuron layers are ${neuronLayers.join(', ')}`);
    }
    resolveNeuronLayer(model, name);
  }
  if (new Set(requested).size !== requested.length) throw new NeuronLayerError(`layers are named twice: ${requested.join(', ')}`);
  return [...requested];
}

/** The classifier (last Linear outside the neuron layers): its input is the penultimate feature. */
export const classifierOf = (model: Module, neuronLayers: readonly string[]): string => classifierLayer(model, neuronLayers);

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
