// Neural-network functions: linear, convolution, pooling, normalisation, dropout, recurrent cells,
// activations over a dim and losses. Modules in src/nn hold parameters and call these.
import type { Tensor } from '../tensor.ts';
import { call, callMany, h, hs } from './dispatch.ts';

type Pair = number | [number, number];

export const linear = (x: Tensor, weight: Tensor, bias?: Tensor | null) => call('aten::linear', '', [x.handle, weight.handle, h(bias)]);
export const matmul = (a: Tensor, b: Tensor) => call('aten::matmul', '', [a.handle, b.handle]);
export const mm = (a: Tensor, b: Tensor) => call('aten::mm', '', [a.handle, b.handle]);
export const bmm = (a: Tensor, b: Tensor) => call('aten::bmm', '', [a.handle, b.handle]);

export interface ConvOptions<T> {
  stride?: T;
  padding?: T;
  dilation?: T;
  groups?: number;
}

export function conv1d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: ConvOptions<number> = {}): Tensor {
  return call('aten::conv1d', '', [x.handle, weight.handle, h(bias), [opts.stride ?? 1], [opts.padding ?? 0], [opts.dilation ?? 1], opts.groups ?? 1]);
}

export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: ConvOptions<Pair> = {}): Tensor {
  return call('aten::conv2d', '', [x.handle, weight.handle, h(bias), opts.stride ?? 1, opts.padding ?? 0, opts.dilation ?? 1, opts.groups ?? 1]);
}

export interface PoolOptions<T> {
  stride?: T;
  padding?: T;
  ceilMode?: boolean;
}

export function maxPool2d(x: Tensor, kernel: Pair, opts: PoolOptions<Pair> = {}): Tensor {
  return call('aten::max_pool2d', '', [x.handle, kernel, opts.stride ?? kernel, opts.padding ?? 0, 1, opts.ceilMode ?? false]);
}

export function avgPool2d(x: Tensor, kernel: Pair, opts: PoolOptions<Pair> = {}): Tensor {
  return call('aten::avg_pool2d', '', [x.handle, kernel, opts.stride ?? kernel, opts.padding ?? 0, opts.ceilMode ?? false]);
}

export function maxPool1d(x: Tensor, kernel: number, opts: PoolOptions<number> = {}): Tensor {
  return call('aten::max_pool1d', '', [x.handle, [kernel], [opts.stride ?? kernel], [opts.padding ?? 0], [1], opts.ceilMode ?? false]);
}

export function avgPool1d(x: Tensor, kernel: number, opts: PoolOptions<number> = {}): Tensor {
  return call('aten::avg_pool1d', '', [x.handle, [kernel], [opts.stride ?? kernel], [opts.padding ?? 0], opts.ceilMode ?? false]);
}

export const adaptiveAvgPool2d = (x: Tensor, size: Pair) => call('aten::adaptive_avg_pool2d', '', [x.handle, size]);
export const adaptiveAvgPool1d = (x: Tensor, size: number) => call('aten::adaptive_avg_pool1d', '', [x.handle, [size]]);

export interface BatchNormArgs {
  weight?: Tensor | null;
  bias?: Tensor | null;
  /** running statistics; with training=true they are updated in place unless omitted */
  runningMean?: Tensor | null;
  runningVar?: Tensor | null;
  training: boolean;
  momentum?: number;
  eps?: number;
}

export function batchNorm(x: Tensor, a: BatchNormArgs): Tensor {
  return call('aten::batch_norm', '', [
    x.handle,
    h(a.weight),
    h(a.bias),
    h(a.runningMean),
    h(a.runningVar),
    a.training,
    a.momentum ?? 0.1,
    a.eps ?? 1e-5,
    true,
  ]);
}

export function layerNorm(x: Tensor, normalizedShape: number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  return call('aten::layer_norm', '', [x.handle, normalizedShape, h(weight), h(bias), eps]);
}

/** Inverted dropout: zeroes elements with probability p and scales the rest by 1/(1-p) when training. */
export const dropout = (x: Tensor, p: number, training: boolean) => call('aten::dropout', '', [x.handle, p, training]);

export const softmax = (x: Tensor, dim: number) => call('aten::softmax', 'int', [x.handle, dim]);
export const logSoftmax = (x: Tensor, dim: number) => call('aten::log_softmax', 'int', [x.handle, dim]);

const reductions = { none: 0, mean: 1, sum: 2 } as const;
export type Reduction = keyof typeof reductions;

/** Cross-entropy of logits [N, C] against class indices [N] (int64), or class probabilities [N, C]. */
export function crossEntropy(logits: Tensor, target: Tensor, opts: { reduction?: Reduction; labelSmoothing?: number; weight?: Tensor } = {}): Tensor {
  return call('aten::cross_entropy_loss', '', [
    logits.handle,
    target.handle,
    h(opts.weight),
    reductions[opts.reduction ?? 'mean'],
    -100,
    opts.labelSmoothing ?? 0,
  ]);
}

export const nllLoss = (logProbs: Tensor, target: Tensor, reduction: Reduction = 'mean') =>
  call('aten::nll_loss', '', [logProbs.handle, target.handle, null, reductions[reduction]]);
export const mseLoss = (a: Tensor, b: Tensor, reduction: Reduction = 'mean') => call('aten::mse_loss', '', [a.handle, b.handle, reductions[reduction]]);

export const embedding = (weight: Tensor, indices: Tensor) => call('aten::embedding', '', [weight.handle, indices.handle]);

export interface LstmArgs {
  /** [h0, c0], each [layers * directions, batch, hidden] */
  hx: [Tensor, Tensor];
  /** flat weights layer by layer: w_ih, w_hh, b_ih, b_hh (then the reverse direction's, if bidirectional) */
  params: Tensor[];
  hasBiases: boolean;
  numLayers: number;
  dropout: number;
  training: boolean;
  bidirectional: boolean;
  batchFirst: boolean;
}

/** The fused multi-layer LSTM (aten::lstm.input): returns output, h_n, c_n. */
export function lstm(x: Tensor, a: LstmArgs): { output: Tensor; h: Tensor; c: Tensor } {
  const [output, hn, cn] = callMany('aten::lstm', 'input', [
    x.handle,
    hs(a.hx),
    hs(a.params),
    a.hasBiases,
    a.numLayers,
    a.dropout,
    a.training,
    a.bidirectional,
    a.batchFirst,
  ]) as Tensor[];
  return { output, h: hn, c: cn };
}
