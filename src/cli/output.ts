// How a subcommand reports: a human summary on stdout, or with --json exactly one JSON object on the
// last line of stdout; progress always goes to stderr.
export function report(json: boolean, result: object, human: () => string): void {
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else process.stdout.write(`${human()}\n`);
}

export const percent = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : 'n/a');

/** Parses a positive integer option or throws a usage-style error naming the option. */
export function positiveInt(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got '${value}'`);
    return n;
  };
}
