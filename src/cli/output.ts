// How a subcommand reports: a human summary on stdout, or with --json exactly one JSON object on the
// last line of stdout; progress always goes to stderr.

/** A usage error found after parsing (a combination of options that does not fit): exit 2 with the message. */
export class UsageError extends Error {}

export function report(json: boolean, result: object, human: () => string): void {
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else process.stdout.write(`${human()}\n`);
}

export const percent = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : 'n/a');
