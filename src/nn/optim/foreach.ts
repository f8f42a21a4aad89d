// Multi-tensor in-place updates: one native call updates a whole parameter list (as PyTorch's
// foreach optimizers), instead of a call per parameter.
import type { Tensor } from '../../torch/index.ts';
import { callInPlace, callMany, hs } from '../../torch/ops/dispatch.ts';

export const foreachMul = (xs: Tensor[], scalar: number) => callInPlace('aten::_foreach_mul_', 'Scalar', [hs(xs), scalar]);
export const foreachAddScalar = (xs: Tensor[], scalar: number) => callInPlace('aten::_foreach_add_', 'Scalar', [hs(xs), scalar]);
export const foreachDivScalar = (xs: Tensor[], scalar: number) => callInPlace('aten::_foreach_div_', 'Scalar', [hs(xs), scalar]);
/** xs[i] += alpha * ys[i] */
export const foreachAdd = (xs: Tensor[], ys: Tensor[], alpha = 1) => callInPlace('aten::_foreach_add_', 'List', [hs(xs), hs(ys), alpha]);
/** xs[i] += value * a[i] * b[i] */
export const foreachAddcmul = (xs: Tensor[], a: Tensor[], b: Tensor[], value: number) =>
  callInPlace('aten::_foreach_addcmul_', 'Scalar', [hs(xs), hs(a), hs(b), value]);
/** xs[i] += value * a[i] / b[i] */
export const foreachAddcdiv = (xs: Tensor[], a: Tensor[], b: Tensor[], value: number) =>
  callInPlace('aten::_foreach_addcdiv_', 'Scalar', [hs(xs), hs(a), hs(b), value]);
export const foreachCopy = (dst: Tensor[], src: Tensor[]) => {
  for (let i = 0; i < dst.length; i++) callInPlace('aten::copy_', '', [dst[i].handle, src[i].handle]);
};

/** sqrt of each tensor, as new tensors. */
export function foreachSqrt(xs: Tensor[]): Tensor[] {
  return callManyTensors('aten::_foreach_sqrt', '', [hs(xs)]);
}

/** The 2-norm of each tensor, as 0-d tensors. */
export function foreachNorm(xs: Tensor[]): Tensor[] {
  return callManyTensors('aten::_foreach_norm', 'Scalar', [hs(xs), 2]);
}

function callManyTensors(name: string, overload: string, args: unknown[]): Tensor[] {
  return callMany(name, overload, args) as Tensor[];
}
