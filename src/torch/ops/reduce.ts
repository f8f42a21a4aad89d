// Reductions. `dim` may be one axis or several; omitted means all elements.
import type { Tensor } from '../tensor.ts';
import { call, callMany } from './dispatch.ts';

type Dims = number | number[];
const asList = (dim: Dims) => (typeof dim === 'number' ? [dim] : dim);

export function sum(a: Tensor, dim?: Dims, keepdim = false): Tensor {
  return dim === undefined ? call('aten::sum', '', [a.handle]) : call('aten::sum', 'dim_IntList', [a.handle, asList(dim), keepdim]);
}

export function mean(a: Tensor, dim?: Dims, keepdim = false): Tensor {
  return dim === undefined ? call('aten::mean', '', [a.handle]) : call('aten::mean', 'dim', [a.handle, asList(dim), keepdim]);
}

/** Largest value (over all elements, or along dim: values only; see maxWithIndices). */
export function max(a: Tensor, dim?: number, keepdim = false): Tensor {
  if (dim === undefined) return call('aten::max', '', [a.handle]);
  return call('aten::amax', '', [a.handle, [dim], keepdim]);
}

export function min(a: Tensor, dim?: number, keepdim = false): Tensor {
  if (dim === undefined) return call('aten::min', '', [a.handle]);
  return call('aten::amin', '', [a.handle, [dim], keepdim]);
}

export function maxWithIndices(a: Tensor, dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
  const [values, indices] = callMany('aten::max', 'dim', [a.handle, dim, keepdim]) as Tensor[];
  return { values, indices };
}

export function argmax(a: Tensor, dim?: number, keepdim = false): Tensor {
  return call('aten::argmax', '', [a.handle, dim ?? null, keepdim]);
}

export function argmin(a: Tensor, dim?: number, keepdim = false): Tensor {
  return call('aten::argmin', '', [a.handle, dim ?? null, keepdim]);
}

/** Vector p-norm (default 2) over all elements or the given dims. */
export function norm(a: Tensor, p = 2, dim?: Dims, keepdim = false): Tensor {
  return call('aten::linalg_vector_norm', '', [a.handle, p, dim === undefined ? null : asList(dim), keepdim]);
}

/** Standard deviation; unbiased (n-1) by default as in PyTorch. */
export function std(a: Tensor, dim?: Dims, keepdim = false, unbiased = true): Tensor {
  return call('aten::std', 'dim', [a.handle, dim === undefined ? null : asList(dim), unbiased, keepdim]);
}

export function variance(a: Tensor, dim?: Dims, keepdim = false, unbiased = true): Tensor {
  return call('aten::var', 'dim', [a.handle, dim === undefined ? null : asList(dim), unbiased, keepdim]);
}

export const logsumexp = (a: Tensor, dim: Dims, keepdim = false) => call('aten::logsumexp', '', [a.handle, asList(dim), keepdim]);
export const cumsum = (a: Tensor, dim: number) => call('aten::cumsum', '', [a.handle, dim]);
export const prod = (a: Tensor) => call('aten::prod', '', [a.handle]);
export const all = (a: Tensor) => call('aten::all', '', [a.handle]);
export const any = (a: Tensor) => call('aten::any', '', [a.handle]);

/** The k largest values along dim, with their indices. */
export function topk(a: Tensor, k: number, dim = -1, largest = true): { values: Tensor; indices: Tensor } {
  const [values, indices] = callMany('aten::topk', '', [a.handle, k, dim, largest, true]) as Tensor[];
  return { values, indices };
}

export function sort(a: Tensor, dim = -1, descending = false): { values: Tensor; indices: Tensor } {
  const [values, indices] = callMany('aten::sort', '', [a.handle, dim, descending]) as Tensor[];
  return { values, indices };
}
