// Forward hooks: run code on (or replace) a module's output while fn runs, as torch's
// register_forward_hook does, without the module knowing. The hook is an own property that shadows the
// class's forward and is removed afterwards, so nothing survives fn. A view of a TorchScript archive's
// submodule (models/torchscript.ts) accepts the same shadowing: while it is set, the archive's forward runs
// with a call of the view's forward wherever its code calls that submodule (ScriptModule.forwardHooked).
import type { Tensor } from '../torch/index.ts';
import type { Module } from './module.ts';

type Forward = (x: Tensor) => Tensor;

/**
 * Runs fn with `hook(output, input)` called after every forward of `module`; a tensor the hook returns
 * replaces the output (the original output is then released unless it is the input).
 */
export function withForwardHook<T>(module: Module, hook: (output: Tensor, input: Tensor) => Tensor | undefined, fn: () => T): T {
  const target = module as unknown as { forward: Forward };
  if (typeof target.forward !== 'function') throw new Error(`${module.constructor.name} has no forward() to hook`);
  const hadOwn = Object.hasOwn(target, 'forward');
  const previous = target.forward;
  target.forward = (x: Tensor) => {
    const output = previous.call(module, x);
    const replaced = hook(output, x);
    if (replaced && replaced !== output && output !== x && !output.persistent) output.dispose();
    return replaced ?? output;
  };
  const restore = () => {
    if (hadOwn) target.forward = previous;
    else delete (target as Partial<typeof target>).forward;
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
