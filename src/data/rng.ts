// A small seeded PRNG (mulberry32) shared by everything in src/data, so that a seed alone fixes every
// random choice: clip parameters, splits, subsets. Math.random is never used for data.

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** Standard normal (Box-Muller). */
  normal(): number;
  /** One element, uniformly. */
  pick<T>(items: readonly T[]): T;
  /** Fisher-Yates shuffle in place; returns the same array. */
  shuffle<T>(items: T[]): T[];
}

export function createRng(seed: number | string): Rng {
  let state = typeof seed === 'string' ? hashString(seed) : toUint32(seed);
  // The second Box-Muller output is kept so normal() costs one log/sqrt per two draws.
  let spare: number | undefined;

  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };

  const int = (n: number): number => {
    if (!Number.isInteger(n) || n <= 0) throw new RangeError(`rng.int: n must be a positive integer, got ${n}`);
    return Math.floor(next() * n);
  };

  return {
    next,
    int,
    uniform: (lo, hi) => lo + (hi - lo) * next(),
    normal() {
      if (spare !== undefined) {
        const value = spare;
        spare = undefined;
        return value;
      }
      let u = 0;
      while (u === 0) u = next();
      const v = next();
      const radius = Math.sqrt(-2 * Math.log(u));
      spare = radius * Math.sin(2 * Math.PI * v);
      return radius * Math.cos(2 * Math.PI * v);
    },
    pick(items) {
      if (items.length === 0) throw new RangeError('rng.pick: empty array');
      return items[int(items.length)];
    },
    shuffle(items) {
      for (let i = items.length - 1; i > 0; i--) {
        const j = int(i + 1);
        const tmp = items[i];
        items[i] = items[j];
        items[j] = tmp;
      }
      return items;
    },
  };
}

/**
 * A 32-bit seed derived from a base seed and labels, so independent streams (one per split, per file, ...)
 * do not shift when another stream draws more numbers.
 */
export function deriveSeed(seed: number | string, ...labels: (string | number)[]): number {
  return hashString([String(seed), ...labels.map(String)].join('\u0000'));
}

/** FNV-1a over UTF-16 code units followed by a murmur3 finalizer (FNV alone mixes low bits poorly). */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h >>> 0);
}

function toUint32(seed: number): number {
  if (!Number.isFinite(seed)) throw new RangeError(`rng seed must be finite, got ${seed}`);
  // Integers that fit stay as they are (seed 1 is state 1); anything else is hashed rather than truncated.
  if (Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff) return seed >>> 0;
  return hashString(String(seed));
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
