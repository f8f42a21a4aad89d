// Per-neuron gradient magnitudes on clean data (specs/defenses.md 1.6, after [TSBD] train_unlearning): after
// each batch's backward of the clean cross-entropy, the L1 norm a_n = sum_j |dL/dW[n, j]| (and the L2 norm)
// of every neuron's weight slice, stacked over the batches; the mean and variance per neuron summarise them.
// The GN-FT paper's observation (Section III-B, Fig. 2) is that backdoored and hybrid neurons carry the
// larger gradients on clean inputs.
//
// Mode: eval by default. BatchNorm then uses its running statistics and dropout is off, so a neuron's
// gradient is that of the deployed function on these clips, independent of how clips are grouped and
// comparable between models; the paper measures a trained model on clean inputs. TSBD records during
// its unlearning epochs, i.e. in train mode, as a by-product of training: `mode: 'train'` reproduces that
// (BatchNorm batch statistics; its running statistics are frozen, so the model is unchanged).
import { batchIndices, type FeatureSet, gatherBatch } from '../data/feature-set.ts';
import { type NeuronLayer, resolveNeuronLayer } from '../models/neurons.ts';
import type { KwsModel } from '../models/registry.ts';
import { withFrozenBatchNormStats } from '../nn/index.ts';
import { abs, crossEntropy, grad, square, sum, type Tensor, tidy } from '../torch/index.ts';

export interface GradientOptions {
  /** clips per backward (default 16: ~9 batches for the 5% defender's set of small SCD-10) */
  batchSize?: number;
  mode?: 'eval' | 'train';
}

export interface NeuronGradientStats {
  index: number;
  l1Mean: number;
  l1Variance: number;
  l2Mean: number;
  l2Variance: number;
}

export interface LayerGradients {
  layer: string;
  batches: number;
  neurons: NeuronGradientStats[];
}

/** Per-neuron [l1, l2] norms of one layer's gradients (weights only, as the spec's W[n, ...]). */
function neuronNorms(layer: NeuronLayer, grads: Map<Tensor, Tensor>): { l1: Tensor; l2sq: Tensor } {
  let l1: Tensor | undefined;
  let l2sq: Tensor | undefined;
  for (const { tensor, isWeight } of layer.tensors) {
    if (!isWeight) continue;
    const g = grads.get(tensor) as Tensor;
    // Rows grouped per neuron: [neurons, rows per neuron, rest]. LSTM rows are gate-major (g*H + n).
    const grouped = layer.kind === 'lstm' ? g.reshape([4, layer.size, -1]).transpose(0, 1) : g.reshape([layer.size, 1, -1]);
    const a = sum(abs(grouped), [1, 2]);
    const b = sum(square(grouped), [1, 2]);
    l1 = l1 ? l1.add(a) : a;
    l2sq = l2sq ? l2sq.add(b) : b;
  }
  return { l1: l1 as Tensor, l2sq: l2sq as Tensor };
}

const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** Unbiased variance (torch.var's default); 0 for a single batch. */
function varianceOf(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = meanOf(xs);
  return xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1);
}

/**
 * The mean and variance, over batches of `set` (in order, the short last batch kept), of each neuron's
 * gradient L1 and L2 norms, for every layer in `layers`. The model's mode and weights are unchanged.
 */
export function neuronGradients(model: KwsModel, layers: readonly string[], set: FeatureSet, opts: GradientOptions = {}): LayerGradients[] {
  const batchSize = opts.batchSize ?? 16;
  if (set.size === 0) throw new Error('gradient norms need at least one clean clip');
  const resolved = layers.map((name) => resolveNeuronLayer(model, name));
  const weights = resolved.flatMap((l) => l.tensors.filter((t) => t.isWeight).map((t) => t.tensor));
  const perBatch = resolved.map((l) => Array.from({ length: l.size }, () => ({ l1: [] as number[], l2: [] as number[] })));
  const wasTraining = model.training;
  model.train(opts.mode === 'train');
  const run = () => {
    for (const indices of batchIndices(set.size, batchSize)) {
      tidy(() => {
        const { x, y } = gatherBatch(set, indices);
        const loss = crossEntropy(model.forward(x), y);
        const grads = grad(loss, weights, { allowUnused: true });
        const byTensor = new Map(weights.map((w, i) => [w, grads[i] ?? w.zerosLike()]));
        resolved.forEach((layer, k) => {
          const { l1, l2sq } = neuronNorms(layer, byTensor);
          const a = l1.toArray();
          const b = l2sq.toArray();
          for (let n = 0; n < layer.size; n++) {
            perBatch[k][n].l1.push(a[n]);
            perBatch[k][n].l2.push(Math.sqrt(b[n]));
          }
        });
      });
    }
  };
  try {
    if (opts.mode === 'train') withFrozenBatchNormStats(model, run);
    else run();
  } finally {
    model.train(wasTraining);
  }
  const batches = Math.ceil(set.size / batchSize);
  return resolved.map((layer, k) => ({
    layer: layer.name,
    batches,
    neurons: perBatch[k].map((s, index) => ({
      index,
      l1Mean: meanOf(s.l1),
      l1Variance: varianceOf(s.l1),
      l2Mean: meanOf(s.l2),
      l2Variance: varianceOf(s.l2),
    })),
  }));
}
