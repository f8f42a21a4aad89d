// A model-level summary of the per-neuron gradient norms on clean data. The GN-FT paper's observation
// (Section III-B, Fig. 2) is that backdoored and hybrid neurons carry larger gradients on clean inputs than
// clean neurons; a backdoor lives in a minority of neurons, so a backdoored model's distribution of
// per-neuron gradient norms should have a heavier upper tail.
//
// The score is scale-free so that models of one family compare: per layer, the tail ratio = mean of the top
// 10% of neurons' mean L1 norms / their median (a ratio: the loss level, the batch size and a layer-wide
// weight scale cancel), and the score is the mean over layers of log(tail ratio). Also reported: the mean
// "effective" gradient, mean_n ||g_n||_2 * ||W_n||_2, which is invariant to rescaling a neuron's weights
// (a conv followed by BatchNorm computes the same function for a*W, with gradient g/a). Neither has a
// calibrated threshold: research/scan/scan-zoo.ts measures how well they separate.

import { resolveNeuronLayer } from '../models/neurons.ts';
import type { Module } from '../nn/index.ts';
import { noGrad, type Tensor, tidy } from '../torch/index.ts';
import type { LayerGradients } from './gradients.ts';

export interface GradientSignature {
  /** mean over layers of log(tail ratio) */
  score: number;
  layers: { layer: string; tailRatio: number; meanL1: number; effective: number }[];
}

const tailShare = 0.1;

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Tail ratio of positive values: mean of the top ceil(10%) over the median. */
export function tailRatio(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => b - a);
  const top = sorted.slice(0, Math.max(1, Math.ceil(tailShare * sorted.length)));
  const med = median(sorted);
  const topMean = top.reduce((a, b) => a + b, 0) / top.length;
  return med > 0 ? topMean / med : Number.POSITIVE_INFINITY;
}

/** Per-neuron L2 norms of a layer's weight rows (all the rows a neuron owns). */
function rowNorms(model: Module, layer: string): number[] {
  const l = resolveNeuronLayer(model, layer);
  return noGrad(() =>
    tidy(() => {
      const squares = new Float64Array(l.size);
      for (const { tensor, isWeight } of l.tensors) {
        if (!isWeight) continue;
        for (let n = 0; n < l.size; n++) {
          for (const r of l.rowsOf(n)) squares[n] += (tensor.select(0, r) as Tensor).square().sum().item();
        }
      }
      return Array.from(squares, Math.sqrt);
    }),
  );
}

export function gradientSignature(model: Module, gradients: readonly LayerGradients[]): GradientSignature {
  const layers = gradients.map((g) => {
    const l1 = g.neurons.map((n) => n.l1Mean);
    const norms = rowNorms(model, g.layer);
    const effective = g.neurons.reduce((s, n, i) => s + n.l2Mean * norms[i], 0) / g.neurons.length;
    return { layer: g.layer, tailRatio: tailRatio(l1), meanL1: l1.reduce((a, b) => a + b, 0) / l1.length, effective };
  });
  const score = layers.reduce((s, l) => s + Math.log(l.tailRatio), 0) / layers.length;
  return { score, layers };
}
