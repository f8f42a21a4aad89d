// libtorch's own CPU profiler around a piece of work: which ATen ops ran, how often, and for how long.
// The same events PyTorch's `torch.autograd.profiler.profile(use_kineto=False)` records, so a table from
// here and one from PyTorch compare op by op (bench/profile.ts does that for the ResNet step).
import { native, type OpProfile } from './native.ts';

export type { OpProfile } from './native.ts';

/**
 * Runs fn under the profiler; returns its result and the per-op totals, largest self time first.
 * withShapes: one row per op and input shapes ("aten::copy_ [256, 16, 101, 40], [...]").
 */
export function profileOps<T>(fn: () => T, opts: { withShapes?: boolean } = {}): { result: T; ops: OpProfile[] } {
  native.profileStart(opts.withShapes ?? false);
  let ops: OpProfile[] = [];
  try {
    const result = fn();
    ops = native.profileStop();
    return { result, ops: ops.sort((a, b) => b.selfUs - a.selfUs) };
  } catch (error) {
    // stop even when fn throws, so that the next profile can start
    native.profileStop();
    throw error;
  }
}
