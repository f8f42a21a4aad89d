// Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_.
import { dispose, noGrad, norm, stack, type Tensor } from '../../torch/index.ts';
import { foreachMul, foreachNorm } from './foreach.ts';
import { paramsWithGrads } from './optimizer.ts';

/** Scales all gradients so their joint 2-norm is at most maxNorm; returns the norm before clipping. */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  return noGrad(() => {
    const { grads } = paramsWithGrads(params);
    if (grads.length === 0) return 0;
    const norms = foreachNorm(grads);
    const stacked = stack(norms);
    const totalT = norm(stacked);
    const total = totalT.item();
    const coefficient = maxNorm / (total + 1e-6);
    if (coefficient < 1) foreachMul(grads, coefficient);
    dispose(norms, stacked, totalT, grads);
    return total;
  });
}
