// Linear algebra beyond matmul.
import type { Tensor } from '../tensor.ts';
import { call, callMany } from './dispatch.ts';

/** Eigen-decomposition of a symmetric matrix: eigenvalues ascending, eigenvectors as columns. */
export function eigh(a: Tensor): { values: Tensor; vectors: Tensor } {
  const [values, vectors] = callMany('aten::linalg_eigh', '', [a.handle, 'L']) as Tensor[];
  return { values, vectors };
}

/** Reduced SVD: a = U diag(S) Vh. */
export function svd(a: Tensor, fullMatrices = false): { U: Tensor; S: Tensor; Vh: Tensor } {
  const [U, S, Vh] = callMany('aten::linalg_svd', '', [a.handle, fullMatrices]) as Tensor[];
  return { U, S, Vh };
}

export const dot = (a: Tensor, b: Tensor) => call('aten::dot', '', [a.handle, b.handle]);
export const outer = (a: Tensor, b: Tensor) => call('aten::outer', '', [a.handle, b.handle]);
/** Pairwise Euclidean distances between the rows of a [N, D] and b [M, D]. */
export const cdist = (a: Tensor, b: Tensor) => call('aten::cdist', '', [a.handle, b.handle, 2]);
