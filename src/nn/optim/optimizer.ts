// What every optimizer shares: a parameter list, a learning rate a schedule can change, and the
// gradients read once per step.
import { dispose, type Tensor } from '../../torch/index.ts';

export interface Optimizer {
  /** current learning rate (schedules write it) */
  lr: number;
  readonly params: Tensor[];
  /** One update from the parameters' current .grad (parameters without a gradient are skipped). */
  step(): void;
  zeroGrad(): void;
  /** Optimizer state (moments, step counts) as named tensors, to checkpoint and resume. */
  stateDict(): Map<string, Tensor>;
  loadStateDict(state: Map<string, Tensor>): void;
  /** Frees the optimizer's state tensors (moments, momentum buffers). */
  dispose(): void;
}

/** The parameters that have a gradient now, with those gradients (new handles: dispose after use). */
export function paramsWithGrads(params: Tensor[]): { indices: number[]; params: Tensor[]; grads: Tensor[] } {
  const indices: number[] = [];
  const withGrad: Tensor[] = [];
  const grads: Tensor[] = [];
  params.forEach((p, i) => {
    const g = p.grad;
    if (g) {
      indices.push(i);
      withGrad.push(p);
      grads.push(g);
    }
  });
  return { indices, params: withGrad, grads };
}

export function zeroGrads(params: Tensor[]): void {
  for (const p of params) p.grad = null;
}

export function disposeAll(tensors: Tensor[]): void {
  dispose(tensors);
}
