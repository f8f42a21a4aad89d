// Exact t-SNE (van der Maaten & Hinton 2008) on tensors, for the GN-FT paper's Fig. 5 (clean vs triggered
// penultimate features). Exact P (O(N^2) memory; fine to ~1000 points), perplexity by per-point bisection
// on the precision, early exaggeration, momentum and per-coordinate gains as in the reference tsne.py, and
// a start drawn from a seeded RNG, so one seed gives one picture. float64 throughout.
import { createRng } from '../data/rng.ts';
import {
  add,
  clamp,
  div,
  exp,
  eye,
  gt,
  isfinite,
  log,
  matmul,
  mul,
  neg,
  noGrad,
  reciprocal,
  sign,
  sub,
  sum,
  type Tensor,
  tensor,
  tidy,
  where,
} from '../torch/index.ts';
import { pca } from './pca.ts';

export interface TsneOptions {
  /** effective number of neighbours (default 30, the paper's t-SNE default) */
  perplexity?: number;
  /** gradient steps (default 500) */
  iterations?: number;
  seed?: number;
  /** rows are first projected on this many principal axes when they have more (default 50, as tsne.py) */
  pcaDims?: number;
  /** default 'auto': max(N / exaggeration / 4, 50), as sklearn */
  learningRate?: number | 'auto';
  /** early exaggeration factor (default 12) and the steps it lasts (default 125 = a quarter of 500) */
  exaggeration?: number;
  exaggerationIterations?: number;
}

/** Squared Euclidean distances between the rows of x [N, D]. */
function squaredDistances(x: Tensor): Tensor {
  const norms = sum(mul(x, x), 1, true);
  return clamp(add(sub(norms, mul(matmul(x, x.transpose(0, 1)), 2)), norms.transpose(0, 1)), 0);
}

/**
 * Conditional affinities p_{j|i} with each row's precision found by bisection so that its entropy is
 * log(perplexity); distances are shifted by each row's nearest neighbour, which leaves p unchanged and
 * keeps exp() from underflowing.
 */
function affinities(d2: Tensor, perplexity: number): Tensor {
  const n = d2.shape[0];
  return tidy(() => {
    const diagonal = eye(n, { dtype: 'float64' });
    const offDiagonal = add(neg(diagonal), 1);
    const nearest = add(d2, mul(diagonal, d2.max().item() + 1)).min(1, true);
    const shifted = mul(clamp(sub(d2, nearest), 0), offDiagonal);
    const conditional = (beta: Tensor) => mul(exp(neg(mul(shifted, beta))), offDiagonal);
    const target = Math.log(perplexity);
    const column = (v: number) => tensor(new Float64Array(n).fill(v), [n, 1], { dtype: 'float64' });
    let search = { beta: column(1), lo: column(0), hi: column(Number.POSITIVE_INFINITY) };
    for (let step = 0; step < 64; step++) {
      const { beta, lo, hi } = search;
      search = tidy(() => {
        const p = conditional(beta);
        const z = clamp(sum(p, 1, true), 1e-300);
        const entropy = add(log(z), div(mul(beta, sum(mul(shifted, p), 1, true)), z));
        // Entropy too high: the distribution is too flat, so sharpen it (a larger precision).
        const tooFlat = gt(entropy, target);
        const nextLo = where(tooFlat, beta, lo);
        const nextHi = where(tooFlat, hi, beta);
        const up = where(isfinite(hi), mul(add(beta, hi), 0.5), mul(beta, 2));
        const down = mul(add(beta, lo), 0.5);
        return { beta: where(tooFlat, up, down), lo: nextLo, hi: nextHi };
      });
    }
    const p = conditional(search.beta);
    return div(p, sum(p, 1, true));
  });
}

/** 2-D t-SNE coordinates [N, 2] (float32) of the rows of x [N, D], and the final KL(P || Q). */
export function tsne(x: Tensor, opts: TsneOptions = {}): { coordinates: Tensor; klDivergence: number } {
  if (x.ndim !== 2) throw new Error(`tsne expects rows [N, D], got [${x.shape.join(', ')}]`);
  const n = x.shape[0];
  if (n < 3) throw new Error('t-SNE needs at least three points');
  const perplexity = Math.min(opts.perplexity ?? 30, (n - 1) / 3);
  const iterations = opts.iterations ?? 500;
  const exaggeration = opts.exaggeration ?? 12;
  const exaggerationIterations = opts.exaggerationIterations ?? Math.round(iterations / 4);
  const lr = opts.learningRate === undefined || opts.learningRate === 'auto' ? Math.max(n / exaggeration / 4, 50) : opts.learningRate;
  const pcaDims = opts.pcaDims ?? 50;
  const rng = createRng(opts.seed ?? 0);
  const start = Float64Array.from({ length: n * 2 }, () => rng.normal() * 1e-4);

  return noGrad(() => {
    const keepAll = <T extends Record<string, Tensor>>(o: T): T => {
      for (const t of Object.values(o)) t.persistent = true;
      return o;
    };
    const { P, offDiagonal } = keepAll(
      tidy(() => {
        const rows = x.shape[1] > pcaDims && n > pcaDims ? pca(x, pcaDims).coordinates.to('float64') : x.to('float64');
        const conditional = affinities(squaredDistances(rows), perplexity);
        return { P: clamp(add(conditional, conditional.transpose(0, 1)).div(2 * n), 1e-12), offDiagonal: add(neg(eye(n, { dtype: 'float64' })), 1) };
      }),
    );
    let state = keepAll({
      y: tensor(start, [n, 2], { dtype: 'float64' }),
      update: tensor(new Float64Array(n * 2), [n, 2], { dtype: 'float64' }),
      gains: tensor(new Float64Array(n * 2).fill(1), [n, 2], { dtype: 'float64' }),
    });
    const qOf = (y: Tensor) => {
      const num = mul(reciprocal(add(squaredDistances(y), 1)), offDiagonal);
      return { num, q: clamp(num.div(num.sum()), 1e-12) };
    };
    try {
      for (let it = 0; it < iterations; it++) {
        const previous = state;
        state = keepAll(
          tidy(() => {
            const { y, update, gains } = previous;
            const { num, q } = qOf(y);
            const pq = mul(sub(it < exaggerationIterations ? mul(P, exaggeration) : P, q), num);
            const gradient = mul(sub(mul(sum(pq, 1, true), y), matmul(pq, y)), 4);
            const sameSign = gt(mul(sign(gradient), sign(update)), 0);
            const nextGains = clamp(where(sameSign, mul(gains, 0.8), add(gains, 0.2)), 0.01);
            const momentum = it < exaggerationIterations ? 0.5 : 0.8;
            const nextUpdate = sub(mul(update, momentum), mul(mul(nextGains, gradient), lr));
            const moved = add(y, nextUpdate);
            return { y: sub(moved, moved.mean(0, true)), update: nextUpdate, gains: nextGains };
          }),
        );
        for (const t of Object.values(previous)) t.dispose();
      }
      return tidy(() => {
        const { q } = qOf(state.y);
        const kl = sum(mul(P, log(div(P, q)))).item();
        return { coordinates: state.y.to('float32'), klDivergence: kl };
      });
    } finally {
      for (const t of [...Object.values(state), P, offDiagonal]) t.dispose();
    }
  });
}
