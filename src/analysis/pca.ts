// Principal component analysis on tensors: the eigenvectors of the covariance of centred rows (eigh),
// largest first, each signed so that its largest-magnitude loading is positive (as sklearn's svd_flip),
// which makes the projection independent of the eigensolver's sign choice.
import { eigh, matmul, noGrad, stack, type Tensor, tidy } from '../torch/index.ts';

export interface Pca {
  /** [N, k] coordinates of the rows on the first k axes */
  coordinates: Tensor;
  /** [D, k] unit axes (columns), largest variance first */
  axes: Tensor;
  /** variance along each axis, and its share of the total */
  variances: number[];
  explained: number[];
}

/** The first `k` principal components of the rows of x [N, D] (computed in float64). */
export function pca(x: Tensor, k = 2): Pca {
  if (x.ndim !== 2) throw new Error(`pca expects rows [N, D], got [${x.shape.join(', ')}]`);
  const [n, d] = x.shape;
  if (n < 2) throw new Error('pca needs at least two rows');
  const dims = Math.min(k, d);
  return noGrad(() =>
    tidy(() => {
      const rows = x.to('float64');
      const centred = rows.sub(rows.mean(0, true));
      const covariance = matmul(centred.transpose(0, 1), centred).div(n - 1);
      const { values, vectors } = eigh(covariance);
      // eigh sorts ascending: the last columns are the largest.
      const order = Array.from({ length: dims }, (_, i) => d - 1 - i);
      const eigenvalues = values.toArray();
      const total = eigenvalues.reduce((a, b) => a + Math.max(0, b), 0);
      const columns = order.map((i) => {
        const axis = vectors.select(1, i);
        const loadings = axis.toArray();
        let biggest = 0;
        for (let j = 1; j < loadings.length; j++) if (Math.abs(loadings[j]) > Math.abs(loadings[biggest])) biggest = j;
        return loadings[biggest] < 0 ? axis.neg() : axis;
      });
      const axes = stack(columns, 1);
      const variances = order.map((i) => Math.max(0, eigenvalues[i]));
      return {
        coordinates: matmul(centred, axes).to('float32'),
        axes: axes.to('float32'),
        variances,
        explained: variances.map((v) => (total > 0 ? v / total : 0)),
      };
    }),
  );
}
