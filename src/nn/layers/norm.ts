import { addInPlace, batchNorm, layerNorm, noGrad, ones, type Tensor, tidy, zeros } from '../../torch/index.ts';
import { buffer, Module, parameter } from '../module.ts';

/**
 * Batch normalisation over channel dim 1 (BatchNorm1d: [N, C] or [N, C, L]; BatchNorm2d: [N, C, H, W]).
 * `freezeStats` keeps the running statistics untouched in training mode (the batch statistics are
 * still used to normalise): GN-FT's perturbed pass needs exactly that.
 */
class BatchNorm extends Module {
  weight: Tensor;
  bias: Tensor;
  running_mean: Tensor;
  running_var: Tensor;
  num_batches_tracked: Tensor;
  /** true: training-mode passes do not update running_mean/var/num_batches_tracked */
  freezeStats = false;
  /** weight of a new batch in the running statistics (PyTorch's momentum; 0.1 unless given) */
  momentum: number;

  constructor(
    readonly numFeatures: number,
    readonly dims: number[],
    readonly opts: { eps?: number; momentum?: number } = {},
  ) {
    super();
    this.momentum = opts.momentum ?? 0.1;
    this.weight = parameter(ones([numFeatures]));
    this.bias = parameter(zeros([numFeatures]));
    this.running_mean = buffer(zeros([numFeatures]));
    this.running_var = buffer(ones([numFeatures]));
    this.num_batches_tracked = buffer(zeros([], { dtype: 'int64' }));
  }

  forward(x: Tensor): Tensor {
    if (!this.dims.includes(x.ndim) || x.shape[1] !== this.numFeatures) {
      throw new Error(
        `${this.constructor.name}(${this.numFeatures}) expects [batch, ${this.numFeatures}, ...] with ${this.dims.join(' or ')} dims, got [${x.shape.join(', ')}]`,
      );
    }
    const updateStats = this.training && !this.freezeStats;
    if (updateStats) noGrad(() => addInPlace(this.num_batches_tracked, 1));
    return batchNorm(x, {
      weight: this.weight,
      bias: this.bias,
      // Without running tensors, training-mode batch_norm normalises by batch statistics and
      // updates nothing.
      runningMean: this.training && this.freezeStats ? null : this.running_mean,
      runningVar: this.training && this.freezeStats ? null : this.running_var,
      training: this.training,
      momentum: this.momentum,
      eps: this.opts.eps ?? 1e-5,
    });
  }
}

export class BatchNorm1d extends BatchNorm {
  constructor(numFeatures: number, opts: { eps?: number; momentum?: number } = {}) {
    super(numFeatures, [2, 3], opts);
  }
}

export class BatchNorm2d extends BatchNorm {
  constructor(numFeatures: number, opts: { eps?: number; momentum?: number } = {}) {
    super(numFeatures, [4], opts);
  }
}

export type AnyBatchNorm = BatchNorm1d | BatchNorm2d;
export const isBatchNorm = (m: Module): m is AnyBatchNorm => m instanceof BatchNorm;

/** Runs fn with every BatchNorm in `model` leaving its running statistics untouched. */
export function withFrozenBatchNormStats<T>(model: Module, fn: () => T): T {
  const bns = model.modules().filter(isBatchNorm);
  const previous = bns.map((m) => m.freezeStats);
  for (const m of bns) m.freezeStats = true;
  try {
    return fn();
  } finally {
    bns.forEach((m, i) => {
      m.freezeStats = previous[i];
    });
  }
}

/**
 * Re-estimates every BatchNorm's running statistics from scratch as the plain average over `batches`
 * (PyTorch's momentum=None), with no gradient and nothing else changed. Used after fine-tuning on a few
 * small batches, whose exponential averages say more about the last batches than about the data.
 */
export function recalibrateBatchNorm(model: Module, forward: (x: Tensor) => Tensor, batches: Iterable<Tensor>): number {
  const bns = model.modules().filter(isBatchNorm);
  if (bns.length === 0) return 0;
  const saved = model.modules().map((m) => m.training);
  const momenta = bns.map((m) => m.momentum);
  let seen = 0;
  try {
    model.eval();
    for (const m of bns) {
      m.training = true;
      m.freezeStats = false;
    }
    for (const x of batches) {
      seen += 1;
      // The k-th batch enters with weight 1/k: the running value is the mean over the batches so far.
      for (const m of bns) m.momentum = 1 / seen;
      // tidy: the forward's intermediates are not released by the caller's scope (there may be none);
      // the running statistics are updated in place, so nothing made here outlives the batch.
      tidy(() => {
        noGrad(() => forward(x));
      });
    }
  } finally {
    model.modules().forEach((m, i) => {
      m.training = saved[i];
    });
    bns.forEach((m, i) => {
      m.momentum = momenta[i];
    });
  }
  return seen;
}

/** Layer normalisation over the trailing `normalizedShape` dims. */
export class LayerNorm extends Module {
  weight: Tensor;
  bias: Tensor;
  readonly normalizedShape: number[];

  constructor(
    normalizedShape: number | number[],
    readonly eps = 1e-5,
  ) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape;
    this.weight = parameter(ones(this.normalizedShape));
    this.bias = parameter(zeros(this.normalizedShape));
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps);
  }
}
