/** Mean milliseconds of fn over n runs, after `warmups` untimed runs (the caching allocator and oneDNN's
 * primitive cache settle in the first few; a large model such as EAT needs three or four). */
export function timed(fn: () => void, n: number, warmups = 2): number {
  for (let i = 0; i < warmups; i++) fn();
  const start = performance.now();
  for (let i = 0; i < n; i++) fn();
  return (performance.now() - start) / n;
}
