// The one path from a typed wrapper to libtorch: ATen op handles looked up once by name, results
// wrapped as Tensors (each tracked by the current tidy() scope).
import { native, type OpHandle, type TensorHandle } from '../native.ts';
import { Tensor } from '../tensor.ts';

const handles = new Map<string, OpHandle>();

/** The ATen op `name` (e.g. 'aten::conv2d') with `overload` ('' for the default). Cached. */
export function atenOp(name: string, overload = ''): OpHandle {
  const key = `${name}.${overload}`;
  let op = handles.get(key);
  if (!op) {
    op = native.findOp(name, overload);
    handles.set(key, op);
  }
  return op;
}

function wrap(value: unknown): unknown {
  if (value instanceof native.TensorHandle) return new Tensor(value as TensorHandle);
  if (Array.isArray(value)) return value.map(wrap);
  return value;
}

/** Calls an op that returns one tensor. Arguments follow the op's schema order (undefined: default). */
export function call(name: string, overload: string, args: unknown[]): Tensor {
  return new Tensor(atenOp(name, overload).call(args) as TensorHandle);
}

/** Calls an op that returns several values (tuples, tensor lists, numbers). */
export function callMany(name: string, overload: string, args: unknown[]): unknown[] {
  return wrap(atenOp(name, overload).call(args)) as unknown[];
}

/** Calls an in-place op (e.g. add_), which returns its own first argument: nothing to wrap. */
export function callInPlace(name: string, overload: string, args: unknown[]): void {
  atenOp(name, overload).call(args, true);
}

/** The native handle of t, or null/undefined passed through (for optional tensor arguments). */
export function h(t: Tensor | null | undefined): TensorHandle | null {
  return t ? t.handle : null;
}

export function hs(ts: readonly Tensor[]): TensorHandle[] {
  return ts.map((t) => t.handle);
}
