// How a subcommand reports: a human summary on stdout, or with --json exactly one JSON object on the
// last line of stdout; progress always goes to stderr.
import { InvalidArgumentError } from '@commander-js/extra-typings';

/** A usage error found after parsing (a combination of options that does not fit): exit 2 with the message. */
export class UsageError extends Error {}

export function report(json: boolean, result: object, human: () => string): void {
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else process.stdout.write(`${human()}\n`);
}

export const percent = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : 'n/a');

/** Parses a non-negative integer option, or throws a usage error (exit 2) naming the option. */
export function positiveInt(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer, got '${value}'`);
    return n;
  };
}

/** Parses a number > 0 (an integer when `integer`), or throws a usage error (exit 2) naming the option. */
export function greaterThanZero(name: string, opts: { integer?: boolean } = {}): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!(Number.isFinite(n) && n > 0) || (opts.integer && !Number.isInteger(n))) {
      throw new InvalidArgumentError(`${name} must be ${opts.integer ? 'a whole number' : 'a number'} greater than 0, got '${value}'`);
    }
    return n;
  };
}
