// Elementwise math, comparisons and the in-place updates optimizers use.
import type { Tensor } from '../tensor.ts';
import { call, callInPlace } from './dispatch.ts';

type Operand = Tensor | number;

function binary(name: string, a: Tensor, b: Operand, extra: unknown[] = []): Tensor {
  return typeof b === 'number' ? call(name, 'Scalar', [a.handle, b, ...extra]) : call(name, 'Tensor', [a.handle, b.handle, ...extra]);
}

export const add = (a: Tensor, b: Operand, alpha?: number) => binary('aten::add', a, b, alpha === undefined ? [] : [alpha]);
export const sub = (a: Tensor, b: Operand, alpha?: number) => binary('aten::sub', a, b, alpha === undefined ? [] : [alpha]);
export const mul = (a: Tensor, b: Operand) => binary('aten::mul', a, b);
export const div = (a: Tensor, b: Operand) => binary('aten::div', a, b);
export const pow = (a: Tensor, exponent: Operand) =>
  typeof exponent === 'number' ? call('aten::pow', 'Tensor_Scalar', [a.handle, exponent]) : call('aten::pow', 'Tensor_Tensor', [a.handle, exponent.handle]);
export const remainder = (a: Tensor, b: Operand) => binary('aten::remainder', a, b);

const unary = (name: string) => (a: Tensor) => call(name, '', [a.handle]);
export const neg = unary('aten::neg');
export const exp = unary('aten::exp');
export const log = unary('aten::log');
export const log10 = unary('aten::log10');
export const log1p = unary('aten::log1p');
export const sqrt = unary('aten::sqrt');
export const rsqrt = unary('aten::rsqrt');
export const abs = unary('aten::abs');
export const sign = unary('aten::sign');
export const square = unary('aten::square');
export const sin = unary('aten::sin');
export const cos = unary('aten::cos');
export const floor = unary('aten::floor');
export const ceil = unary('aten::ceil');
export const round = unary('aten::round');
export const reciprocal = unary('aten::reciprocal');
export const relu = unary('aten::relu');
export const sigmoid = unary('aten::sigmoid');
export const tanh = unary('aten::tanh');
export const isnan = unary('aten::isnan');
export const isfinite = unary('aten::isfinite');
export const logicalNot = unary('aten::logical_not');

/** GELU, exact (erf) by default as in PyTorch; 'tanh' for the approximation. */
export const gelu = (a: Tensor, approximate: 'none' | 'tanh' = 'none') => call('aten::gelu', '', [a.handle, approximate]);
export const leakyRelu = (a: Tensor, slope = 0.01) => call('aten::leaky_relu', '', [a.handle, slope]);

export function clamp(a: Tensor, min?: number, max?: number): Tensor {
  return call('aten::clamp', '', [a.handle, min ?? null, max ?? null]);
}

export const maximum = (a: Tensor, b: Tensor) => call('aten::maximum', '', [a.handle, b.handle]);
export const minimum = (a: Tensor, b: Tensor) => call('aten::minimum', '', [a.handle, b.handle]);

/** where(condition, a, b): a where condition holds, else b. */
export function where(condition: Tensor, a: Operand, b: Operand): Tensor {
  if (typeof a === 'number' && typeof b === 'number') return call('aten::where', 'Scalar', [condition.handle, a, b]);
  if (typeof a === 'number') return call('aten::where', 'ScalarSelf', [condition.handle, a, (b as Tensor).handle]);
  if (typeof b === 'number') return call('aten::where', 'ScalarOther', [condition.handle, a.handle, b]);
  return call('aten::where', 'self', [condition.handle, a.handle, b.handle]);
}

export const eq = (a: Tensor, b: Operand) => binary('aten::eq', a, b);
export const ne = (a: Tensor, b: Operand) => binary('aten::ne', a, b);
export const gt = (a: Tensor, b: Operand) => binary('aten::gt', a, b);
export const ge = (a: Tensor, b: Operand) => binary('aten::ge', a, b);
export const lt = (a: Tensor, b: Operand) => binary('aten::lt', a, b);
export const le = (a: Tensor, b: Operand) => binary('aten::le', a, b);

// In-place updates: they change `a` and return nothing new (no allocation, no scope entry).
function binaryInPlace(name: string, a: Tensor, b: Operand, extra: unknown[] = []): void {
  if (typeof b === 'number') callInPlace(name, 'Scalar', [a.handle, b, ...extra]);
  else callInPlace(name, 'Tensor', [a.handle, b.handle, ...extra]);
}
export const addInPlace = (a: Tensor, b: Operand, alpha?: number) => binaryInPlace('aten::add_', a, b, alpha === undefined ? [] : [alpha]);
export const subInPlace = (a: Tensor, b: Operand, alpha?: number) => binaryInPlace('aten::sub_', a, b, alpha === undefined ? [] : [alpha]);
export const mulInPlace = (a: Tensor, b: Operand) => binaryInPlace('aten::mul_', a, b);
export const divInPlace = (a: Tensor, b: Operand) => binaryInPlace('aten::div_', a, b);
/** a += value * t1 * t2 */
export const addcmulInPlace = (a: Tensor, t1: Tensor, t2: Tensor, value = 1) => callInPlace('aten::addcmul_', '', [a.handle, t1.handle, t2.handle, value]);
/** a += value * t1 / t2 */
export const addcdivInPlace = (a: Tensor, t1: Tensor, t2: Tensor, value = 1) => callInPlace('aten::addcdiv_', '', [a.handle, t1.handle, t2.handle, value]);
/** a += weight * (end - a) */
export const lerpInPlace = (a: Tensor, end: Tensor, weight: number) => callInPlace('aten::lerp_', 'Scalar', [a.handle, end.handle, weight]);
export const copyInPlace = (dst: Tensor, src: Tensor) => callInPlace('aten::copy_', '', [dst.handle, src.handle]);
export const zeroInPlace = (a: Tensor) => callInPlace('aten::zero_', '', [a.handle]);
export const fillInPlace = (a: Tensor, value: number) => callInPlace('aten::fill_', 'Scalar', [a.handle, value]);
/** max(a, 0) written into a: autograd keeps the result, which is a itself, so it needs nothing else saved */
export const reluInPlace = (a: Tensor) => callInPlace('aten::relu_', '', [a.handle]);
export const clampInPlace = (a: Tensor, min?: number, max?: number) => callInPlace('aten::clamp_', '', [a.handle, min ?? null, max ?? null]);
export const normalInPlace = (a: Tensor, mean = 0, std = 1) => callInPlace('aten::normal_', '', [a.handle, mean, std]);
export const uniformInPlace = (a: Tensor, from = 0, to = 1) => callInPlace('aten::uniform_', '', [a.handle, from, to]);

/** Multi-tensor updates (one native call for a whole parameter list): list[i] += alpha * other[i]. */
export const foreachAddInPlace = (list: Tensor[], other: Tensor[], alpha = 1) =>
  callInPlace('aten::_foreach_add_', 'List', [list.map((t) => t.handle), other.map((t) => t.handle), alpha]);
