// One GN-FT update (../shared/papers/gn-ft-zhou-lin-liu.txt, Algorithm 1; specs/defenses.md 1.1-1.5):
// the gradient of L + lambda*||grad L|| approximated by a finite difference along the normalised
// gradient, g = (1 - alpha) g1 + alpha g2 with g2 taken at theta + r * g1 / ||g1||.
import { type Module, type Optimizer, withFrozenBatchNormStats } from '../nn/index.ts';
import { addInPlace, clone, copyInPlace, dispose, grad, mulInPlace, noGrad, norm, type Tensor, tidy } from '../torch/index.ts';

export interface GradNormStepOptions {
  /** perturbation radius r (GN-FT paper: 0.05) */
  r: number;
  /** interpolation alpha = lambda / r (GN-FT paper: 0.7, so lambda = 0.035) */
  alpha: number;
  /**
   * 'per-tensor': each tensor moves by r * g1_k / ||g1_k|| (GN-FT's speech code and TSBD);
   * 'global': one norm over all tensors (the original GNP code).
   */
  normalization: 'per-tensor' | 'global';
}

export const gradNormStepDefaults: GradNormStepOptions = { r: 0.05, alpha: 0.7, normalization: 'per-tensor' };

/**
 * Sets every trainable parameter's .grad to the GN-FT gradient for the batch behind lossFn and
 * steps the optimizer. lossFn is called twice on the same batch; BatchNorm running statistics are
 * updated by the first pass only. Parameters are restored exactly (from a snapshot) after the
 * perturbed pass. Returns the unperturbed loss.
 */
export function gradNormPenaltyStep(model: Module, optimizer: Optimizer, lossFn: () => Tensor, options: Partial<GradNormStepOptions> = {}): number {
  const { r, alpha, normalization } = { ...gradNormStepDefaults, ...options };
  const params = model.trainableParameters();
  const loss = tidy(() => {
    const loss1 = lossFn();
    const lossValue = loss1.item();
    const g1 = grad(loss1, params, { allowUnused: true }).map((g, k) => g ?? params[k].zerosLike());
    const snapshot = noGrad(() => params.map(clone));
    noGrad(() => perturb(params, g1, r, normalization));
    const g2 = withFrozenBatchNormStats(model, () => grad(lossFn(), params, { allowUnused: true }));
    noGrad(() => {
      params.forEach((p, k) => {
        copyInPlace(p, snapshot[k]);
        const g = g1[k];
        mulInPlace(g, 1 - alpha);
        const second = g2[k];
        if (second) addInPlace(g, second, alpha);
        p.grad = g;
      });
    });
    dispose(snapshot);
    return lossValue;
  });
  optimizer.step();
  return loss;
}

function perturb(params: Tensor[], g1: Tensor[], r: number, normalization: GradNormStepOptions['normalization']): void {
  // 1e-12 keeps tensors with an all-zero gradient (e.g. pruned weights) from dividing by zero.
  if (normalization === 'global') {
    const total = Math.sqrt(g1.reduce((sum, g) => sum + norm(g).item() ** 2, 0));
    params.forEach((p, k) => addInPlace(p, g1[k], r / (total + 1e-12)));
    return;
  }
  params.forEach((p, k) => addInPlace(p, g1[k], r / (norm(g1[k]).item() + 1e-12)));
}
