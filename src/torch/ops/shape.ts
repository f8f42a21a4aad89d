// Shape, layout, indexing and joining.
import { type DType, dtypeCode, MemoryFormat } from '../dtype.ts';
import type { Tensor } from '../tensor.ts';
import { call, callMany, hs } from './dispatch.ts';

export const reshape = (a: Tensor, shape: number[]) => call('aten::reshape', '', [a.handle, shape]);
export const view = (a: Tensor, shape: number[]) => call('aten::view', '', [a.handle, shape]);
export const flatten = (a: Tensor, startDim = 0, endDim = -1) => call('aten::flatten', 'using_ints', [a.handle, startDim, endDim]);
export const transpose = (a: Tensor, dim0: number, dim1: number) => call('aten::transpose', 'int', [a.handle, dim0, dim1]);
export const permute = (a: Tensor, dims: number[]) => call('aten::permute', '', [a.handle, dims]);
export const unsqueeze = (a: Tensor, dim: number) => call('aten::unsqueeze', '', [a.handle, dim]);
export const squeeze = (a: Tensor, dim?: number) => (dim === undefined ? call('aten::squeeze', '', [a.handle]) : call('aten::squeeze', 'dim', [a.handle, dim]));
export const expand = (a: Tensor, shape: number[]) => call('aten::expand', '', [a.handle, shape]);
export const repeat = (a: Tensor, repeats: number[]) => call('aten::repeat', '', [a.handle, repeats]);
export const flip = (a: Tensor, dims: number[]) => call('aten::flip', '', [a.handle, dims]);
export const roll = (a: Tensor, shifts: number[], dims: number[]) => call('aten::roll', '', [a.handle, shifts, dims]);
export const clone = (a: Tensor) => call('aten::clone', '', [a.handle]);
/**
 * A copy whose strides are the format's even where the layout is ambiguous. Why: a [16, 1, 3, 3] weight is
 * "contiguous" in both layouts, so contiguous(w, 'channelsLast') returns it with NCHW strides, and oneDNN then
 * ran that conv in NCHW and converted its output back before every later conv (PyTorch's
 * `.to(memory_format=...)` gives channels_last strides, as this does).
 */
export const cloneAs = (a: Tensor, format: 'contiguous' | 'channelsLast') => call('aten::clone', '', [a.handle, MemoryFormat[format]]);
/** A tensor sharing a's data, cut from the autograd graph. */
export const detach = (a: Tensor) => call('aten::detach', '', [a.handle]);

export function contiguous(a: Tensor, format: 'contiguous' | 'channelsLast' = 'contiguous'): Tensor {
  return call('aten::contiguous', '', [a.handle, MemoryFormat[format]]);
}

/** Converts the dtype (copying only when it changes). */
export function toDtype(a: Tensor, dtype: DType): Tensor {
  return call('aten::to', 'dtype', [a.handle, dtypeCode(dtype)]);
}

/** Moves to a device such as 'cpu' or 'cuda:0' (see device.ts). */
export function toDevice(a: Tensor, device: string): Tensor {
  return call('aten::to', 'device', [a.handle, device, a.dtypeCode]);
}

export const cat = (tensors: Tensor[], dim = 0) => call('aten::cat', '', [hs(tensors), dim]);
export const stack = (tensors: Tensor[], dim = 0) => call('aten::stack', '', [hs(tensors), dim]);
export const split = (a: Tensor, size: number, dim = 0) => callMany('aten::split', 'Tensor', [a.handle, size, dim]) as Tensor[];
export const chunk = (a: Tensor, chunks: number, dim = 0) => callMany('aten::chunk', '', [a.handle, chunks, dim]) as Tensor[];
export const unbind = (a: Tensor, dim = 0) => callMany('aten::unbind', 'int', [a.handle, dim]) as Tensor[];
/** Elements start..start+length-1 along dim (a view). */
export const narrow = (a: Tensor, dim: number, start: number, length: number) => call('aten::narrow', '', [a.handle, dim, start, length]);
/** Index `index` along dim, removing that dim (a view). */
export const select = (a: Tensor, dim: number, index: number) => call('aten::select', 'int', [a.handle, dim, index]);
/** a[start:end:step] along dim (a view). */
export const slice = (a: Tensor, dim: number, start?: number, end?: number, step = 1) =>
  call('aten::slice', 'Tensor', [a.handle, dim, start ?? null, end ?? null, step]);
export const indexSelect = (a: Tensor, dim: number, index: Tensor) => call('aten::index_select', '', [a.handle, dim, index.handle]);
export const gather = (a: Tensor, dim: number, index: Tensor) => call('aten::gather', '', [a.handle, dim, index.handle]);
/** Advanced indexing a[i0, i1, ...] with index tensors (null: take the whole dim). */
export const index = (a: Tensor, indices: (Tensor | null)[]) => call('aten::index', 'Tensor', [a.handle, indices.map((t) => (t ? t.handle : null))]);
export const maskedFill = (a: Tensor, mask: Tensor, value: number) => call('aten::masked_fill', 'Scalar', [a.handle, mask.handle, value]);
export const maskedSelect = (a: Tensor, mask: Tensor) => call('aten::masked_select', '', [a.handle, mask.handle]);
/** Constant padding; pad lists (left, right) pairs from the last dim backwards, as torch.nn.functional.pad. */
export const pad = (a: Tensor, padding: number[], value = 0) => call('aten::constant_pad_nd', '', [a.handle, padding, value]);
/** Reflect padding of the last dim of a 2-D or 3-D tensor. */
export const reflectionPad1d = (a: Tensor, padding: [number, number]) => call('aten::reflection_pad1d', '', [a.handle, padding]);
export const oneHot = (labels: Tensor, classes: number) => call('aten::one_hot', '', [labels.handle, classes]);
export const tril = (a: Tensor, diagonal = 0) => call('aten::tril', '', [a.handle, diagonal]);
export const triu = (a: Tensor, diagonal = 0) => call('aten::triu', '', [a.handle, diagonal]);
