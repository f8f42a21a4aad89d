// One GN-FT update (../shared/papers/gn-ft-zhou-lin-liu.txt, Algorithm 1; specs/defenses.md 1.1-1.5):
// the gradient of L + lambda*||grad L|| approximated by a finite difference along the normalised
// gradient, g = (1 - alpha) g1 + alpha g2 with g2 taken at theta + r * g1 / ||g1||, and its exact form
// (a Hessian-vector product through a graph of the gradient) to check the approximation against.
import { clipGradNorm, type Module, type Optimizer, withFrozenBatchNormStats } from '../nn/index.ts';
import { abs, add, addInPlace, clone, copyInPlace, dispose, grad, mul, mulInPlace, noGrad, norm, type Tensor, tidy } from '../torch/index.ts';
import type { StepFn } from './fine-tune.ts';

export type PerturbationNorm = 'per-tensor' | 'global' | 'adaptive';

export interface GradNormStepOptions {
  /** perturbation radius r (GN-FT paper: 0.05) */
  r: number;
  /** interpolation alpha = lambda / r (GN-FT paper: 0.7, so lambda = 0.035) */
  alpha: number;
  /**
   * 'per-tensor': each tensor moves by r * g1_k / ||g1_k|| (GN-FT's speech code [AUD] and TSBD);
   * 'global': one norm over all tensors (the original GNP code);
   * 'adaptive': ASAM's scale-invariant radius, e = r * theta^2 g1 / || |theta| g1 || (Kwon et al. 2021),
   *   so each weight moves in proportion to its own size.
   */
  normalization: PerturbationNorm;
  /** clip the global norm of the combined gradient before the step, as GNP does (its default 5.0); 0: off */
  clipNorm?: number;
}

export const gradNormStepDefaults: GradNormStepOptions = { r: 0.05, alpha: 0.7, normalization: 'per-tensor', clipNorm: 0 };

function clipAndStep(optimizer: Optimizer, clipNorm: number | undefined): void {
  if (clipNorm && clipNorm > 0) clipGradNorm(optimizer.params, clipNorm);
  optimizer.step();
}

export function checkStepOptions(o: GradNormStepOptions): void {
  if (!(o.r >= 0 && Number.isFinite(o.r))) throw new RangeError(`GN-FT radius r must be >= 0, got ${o.r}`);
  if (!(o.alpha >= 0 && o.alpha <= 1)) throw new RangeError(`GN-FT alpha must be in [0, 1], got ${o.alpha}`);
}

/**
 * Sets every trainable parameter's .grad to the GN-FT gradient for the batch behind lossFn and
 * steps the optimizer. lossFn is called twice on the same batch; BatchNorm running statistics are
 * updated by the first pass only. Parameters are restored exactly (from a snapshot, not by
 * subtraction) after the perturbed pass. Returns the unperturbed loss.
 */
export function gradNormPenaltyStep(model: Module, optimizer: Optimizer, lossFn: () => Tensor, options: Partial<GradNormStepOptions> = {}): number {
  const o = { ...gradNormStepDefaults, ...options };
  checkStepOptions(o);
  const params = model.trainableParameters();
  const loss = tidy(() => {
    const loss1 = lossFn();
    const lossValue = loss1.item();
    const g1 = grad(loss1, params, { allowUnused: true }).map((g, k) => g ?? params[k].zerosLike());
    if (o.alpha === 0 || o.r === 0) {
      params.forEach((p, k) => {
        p.grad = g1[k];
      });
      return lossValue;
    }
    const snapshot = noGrad(() => params.map(clone));
    noGrad(() => perturb(params, g1, o.r, o.normalization));
    const g2 = withFrozenBatchNormStats(model, () => grad(lossFn(), params, { allowUnused: true }));
    noGrad(() => {
      params.forEach((p, k) => {
        copyInPlace(p, snapshot[k]);
        const g = g1[k];
        mulInPlace(g, 1 - o.alpha);
        const second = g2[k];
        if (second) addInPlace(g, second, o.alpha);
        p.grad = g;
      });
    });
    dispose(snapshot);
    return lossValue;
  });
  clipAndStep(optimizer, o.clipNorm);
  return loss;
}

/** theta += e(g1): the ascent step of the finite difference. */
function perturb(params: Tensor[], g1: Tensor[], r: number, normalization: PerturbationNorm): void {
  // 1e-12 keeps tensors with an all-zero gradient (e.g. pruned weights) from dividing by zero.
  if (normalization === 'per-tensor') {
    params.forEach((p, k) => addInPlace(p, g1[k], r / (norm(g1[k]).item() + 1e-12)));
    return;
  }
  if (normalization === 'global') {
    const total = Math.sqrt(g1.reduce((sum, g) => sum + norm(g).item() ** 2, 0));
    params.forEach((p, k) => addInPlace(p, g1[k], r / (total + 1e-12)));
    return;
  }
  // ASAM: T = |theta| (element-wise), e = r T^2 g / ||T g||.
  const scaled = params.map((p, k) => mul(abs(p), g1[k]));
  const total = Math.sqrt(scaled.reduce((sum, t) => sum + norm(t).item() ** 2, 0));
  params.forEach((p, k) => addInPlace(p, mul(abs(p), scaled[k]), r / (total + 1e-12)));
}

/**
 * The exact gradient of L + lambda * P with lambda = alpha * r, where P is the penalty the finite
 * difference approximates: ||grad L|| ('global') or sum_k ||grad_k L|| ('per-tensor'). The Hessian-vector
 * product comes from differentiating P through the graph of grad L (create_graph). Sets .grad and steps.
 * Costs about three backward passes; models whose ops lack double backward (the fused LSTM) cannot use it.
 */
export function gradNormPenaltyExactStep(model: Module, optimizer: Optimizer, lossFn: () => Tensor, options: Partial<GradNormStepOptions> = {}): number {
  const o = { ...gradNormStepDefaults, ...options };
  checkStepOptions(o);
  if (o.normalization === 'adaptive') throw new Error("the exact GN-FT gradient is defined for 'per-tensor' and 'global' normalisation, not 'adaptive'");
  const params = model.trainableParameters();
  const lambda = o.alpha * o.r;
  const loss = tidy(() => {
    const l = lossFn();
    const value = l.item();
    const g = grad(l, params, { createGraph: true, allowUnused: true }).map((t, k) => t ?? params[k].zerosLike());
    const penalty =
      o.normalization === 'global'
        ? g
            .map((t) => t.square().sum())
            .reduce((a, b) => add(a, b))
            .add(1e-24)
            .sqrt()
        : g.map((t) => norm(t).add(1e-12)).reduce((a, b) => add(a, b));
    const hvp = grad(penalty, params, { allowUnused: true });
    noGrad(() =>
      params.forEach((p, k) => {
        const total = g[k].detach().clone();
        const h = hvp[k];
        if (h) addInPlace(total, h, lambda);
        p.grad = total;
      }),
    );
    return value;
  });
  clipAndStep(optimizer, o.clipNorm);
  return loss;
}

/**
 * The GN-FT step as the fine-tuning loop takes it (GN-FT, TSBD's second stage, FT-SAM with alpha 1): zero the
 * gradients, then the penalised step, by the finite difference or, with `exact`, by a Hessian-vector product.
 */
export function gradNormFineTuneStep(model: Module, o: GradNormStepOptions & { exact?: boolean }): StepFn {
  const stepOptions: GradNormStepOptions = { r: o.r, alpha: o.alpha, normalization: o.normalization, clipNorm: o.clipNorm };
  return (optimizer, lossFn) => {
    optimizer.zeroGrad();
    return o.exact ? gradNormPenaltyExactStep(model, optimizer, lossFn, stepOptions) : gradNormPenaltyStep(model, optimizer, lossFn, stepOptions);
  };
}
