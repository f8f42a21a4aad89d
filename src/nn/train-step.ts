// One plain optimisation step, the unit every training loop and benchmark repeats.
import { backward, type Tensor, tidy } from '../torch/index.ts';
import type { Optimizer } from './optim/optimizer.ts';

/**
 * Clears gradients, computes lossFn() (which must build the graph from the model's parameters),
 * back-propagates and steps. Returns the loss value. All intermediates are freed before it returns.
 */
export function trainStep(optimizer: Optimizer, lossFn: () => Tensor): number {
  optimizer.zeroGrad();
  const loss = tidy(() => {
    const l = lossFn();
    backward(l);
    return l.item();
  });
  optimizer.step();
  return loss;
}
