// Autograd: backward, grad (with createGraph for exact Hessian-vector products) and grad-mode scopes.
import { native } from './native.ts';
import { Tensor } from './tensor.ts';

export interface GradOptions {
  /** gradients of the outputs (default: ones for scalar outputs) */
  gradOutputs?: (Tensor | null)[];
  /** keep the graph for another backward (default: createGraph) */
  retainGraph?: boolean;
  /** build a graph of the gradient itself, for higher-order derivatives */
  createGraph?: boolean;
  /** return null for inputs the outputs do not depend on, instead of throwing */
  allowUnused?: boolean;
}

/** d(sum of outputs)/d(inputs); does not touch .grad. */
export function grad(outputs: Tensor | Tensor[], inputs: Tensor[], opts: GradOptions = {}): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const result = native.grad(
    outs.map((t) => t.handle),
    inputs.map((t) => t.handle),
    opts.gradOutputs ? opts.gradOutputs.map((t) => (t ? t.handle : null)) : null,
    opts.retainGraph ?? null,
    opts.createGraph ?? false,
    opts.allowUnused ?? false,
  );
  return result.map((g) => (g ? new Tensor(g) : null));
}

/** Accumulates d(loss)/d(leaf) into every leaf's .grad (or only `inputs`' when given). */
export function backward(
  loss: Tensor | Tensor[],
  opts: { gradOutputs?: Tensor[]; retainGraph?: boolean; createGraph?: boolean; inputs?: Tensor[] } = {},
): void {
  const outs = Array.isArray(loss) ? loss : [loss];
  native.backward(
    outs.map((t) => t.handle),
    opts.gradOutputs ? opts.gradOutputs.map((t) => t.handle) : null,
    opts.retainGraph ?? null,
    opts.createGraph ?? false,
    opts.inputs ? opts.inputs.map((t) => t.handle) : null,
  );
}

function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const previous = native.setGradEnabled(enabled);
  try {
    const result = fn();
    if (result instanceof Promise) throw new Error('noGrad()/enableGrad() need a synchronous function');
    return result;
  } finally {
    native.setGradEnabled(previous);
  }
}

/** Runs fn without recording operations for autograd (evaluation, in-place parameter updates). */
export const noGrad = <T>(fn: () => T): T => withGradMode(false, fn);
/** Runs fn with autograd recording, even inside noGrad. */
export const enableGrad = <T>(fn: () => T): T => withGradMode(true, fn);
export const isGradEnabled = (): boolean => native.isGradEnabled();
