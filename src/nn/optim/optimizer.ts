// What every optimizer shares: a parameter list, a learning rate a schedule can change, and the
// gradients read once per step.
import { dispose, noGrad, type Tensor } from '../../torch/index.ts';

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

/** The parameters that have a gradient now (positions in the parameter list), with those gradients. */
export interface ParamsWithGrads {
  indices: number[];
  params: Tensor[];
  /** new handles: the update disposes them */
  grads: Tensor[];
}

/** The parameters that have a gradient now, with those gradients (new handles: dispose after use). */
export function paramsWithGrads(params: Tensor[]): ParamsWithGrads {
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

/** What an optimizer adds to the shared frame: its update rule and the state that rule keeps. */
export interface UpdateRule extends Pick<Optimizer, 'stateDict' | 'loadStateDict' | 'dispose'> {
  /** One update of the parameters that have a gradient, at the optimizer's current rate; runs under noGrad. */
  update(found: ParamsWithGrads, lr: number): void;
}

/** An optimizer over `params`: a step reads the gradients once and, when any parameter has one, applies `rule`. */
export function optimizerOf(params: Tensor[], lr: number, rule: UpdateRule): Optimizer {
  const optimizer: Optimizer = {
    lr,
    params,
    step() {
      noGrad(() => {
        const found = paramsWithGrads(params);
        if (found.params.length === 0) return;
        // the rate is read at each step: schedules write optimizer.lr between steps
        rule.update(found, optimizer.lr);
      });
    },
    zeroGrad() {
      zeroGrads(params);
    },
    stateDict: () => rule.stateDict(),
    loadStateDict: (saved) => rule.loadStateDict(saved),
    dispose: () => rule.dispose(),
  };
  return optimizer;
}

export function zeroGrads(params: Tensor[]): void {
  for (const p of params) p.grad = null;
}

export function disposeAll(tensors: Tensor[]): void {
  dispose(tensors);
}
