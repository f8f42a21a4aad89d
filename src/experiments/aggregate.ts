// Aggregation over seeds, the one way every table of results does it: the CLI's paper table
// (grid/store-table.ts, `kwshield results`), the HTML report's (report/paper-table.ts) and the README's
// (scripts/tables.ts). A cell is a mean ± sample standard deviation over seeds; the paper's Average row
// is the plain mean over a model's attacks of each cell's mean (GN-FT Tables I and II).

export interface Stat {
  mean: number;
  /** sample standard deviation (n - 1); 0 for a single value */
  std: number;
  /** values (seeds) averaged */
  n: number;
}

/** Mean and sample standard deviation of the values, in their order; undefined for none. */
export function meanStd(values: readonly number[]): Stat | undefined {
  const n = values.length;
  if (n === 0) return undefined;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}

/** meanStd of the finite values only (a rate nobody could measure is left out); NaN with n 0 for none. */
export function finiteMeanStd(values: readonly number[]): Stat {
  return meanStd(values.filter((x) => typeof x === 'number' && Number.isFinite(x))) ?? { mean: Number.NaN, std: Number.NaN, n: 0 };
}

/** A rate in percent with one decimal, 'n/a' when it is not a number. */
export const percentText = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? 'n/a' : (100 * x).toFixed(1));

/** '98.8 ± 0.5' (percent), '98.8' for one value, `empty` for none. */
export function meanStdText(s: Stat | undefined, empty: string): string {
  if (!s || s.n === 0) return empty;
  return s.n > 1 ? `${percentText(s.mean)} ± ${(100 * s.std).toFixed(1)}` : percentText(s.mean);
}

/** Items grouped by key, groups and members in the order first seen. */
export function groupBy<T>(items: Iterable<T>, key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/**
 * One value per key, the last one given: the No Defense cell counts each backdoored model once (one per
 * attack seed), however many defense jobs report its `before`.
 */
export function lastPerKey<T, V>(items: readonly T[], key: (item: T) => unknown, value: (item: T) => V): V[] {
  return [...new Map(items.map((item) => [key(item), value(item)])).values()];
}
