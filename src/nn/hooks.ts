// Forward hooks: run code on (or replace) a module's output while fn runs, as torch's
// register_forward_hook does, without the module knowing; or run a module's forward another way for a
// while (NFT's masked norms). The replacement is an own property that shadows the class's forward and is
// removed afterwards, so nothing survives fn. A view of a TorchScript archive's submodule
// (models/torchscript.ts) accepts the same shadowing: while it is set, the archive's forward runs with a call
// of the view's forward wherever its code calls that submodule (ScriptModule.forwardHooked).
import type { Tensor } from '../torch/index.ts';
import type { Module } from './module.ts';

type Forward = (x: Tensor) => Tensor;

/**
 * Runs fn with the forward of each module replaced, for the call, by wrap(its forward, its index): an own
 * property shadowing the class's forward, removed afterwards (when fn throws too, and when the promise it
 * returns settles), so nothing survives fn.
 */
export function withForwards<T>(modules: readonly Module[], wrap: (forward: Forward, index: number) => Forward, fn: () => T): T {
  const targets = modules.map((module) => module as unknown as { forward: Forward });
  const missing = modules.find((_, i) => typeof targets[i].forward !== 'function');
  if (missing) throw new Error(`${missing.constructor.name} has no forward() to hook`);
  const restores = targets.map((target, i) => {
    const hadOwn = Object.hasOwn(target, 'forward');
    const previous = target.forward;
    target.forward = wrap((x) => previous.call(modules[i], x), i);
    return () => {
      if (hadOwn) target.forward = previous;
      else delete (target as Partial<typeof target>).forward;
    };
  });
  const restore = () => {
    for (const r of restores) r();
  };
  let result: T;
  try {
    result = fn();
  } catch (e) {
    restore();
    throw e;
  }
  if (result instanceof Promise) return result.finally(restore) as T;
  restore();
  return result;
}

/**
 * Runs fn with `hook(output, input)` called after every forward of `module`; a tensor the hook returns
 * replaces the output (the original output is then released unless it is the input).
 */
export function withForwardHook<T>(module: Module, hook: (output: Tensor, input: Tensor) => Tensor | undefined, fn: () => T): T {
  return withForwards(
    [module],
    (forward) => (x: Tensor) => {
      const output = forward(x);
      const replaced = hook(output, x);
      if (replaced && replaced !== output && output !== x && !output.persistent) output.dispose();
      return replaced ?? output;
    },
    fn,
  );
}
