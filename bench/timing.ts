/** Mean milliseconds of fn over n runs, after two warm-up runs. */
export function timed(fn: () => void, n: number): number {
  fn();
  fn();
  const start = performance.now();
  for (let i = 0; i < n; i++) fn();
  return (performance.now() - start) / n;
}
