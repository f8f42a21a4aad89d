// Test support: `kwshield report ARGS` in this process, its JSON result line captured.
import { reportCommand } from '../../src/cli/commands/report.ts';

/** Runs `kwshield report ARGS`; resolves to what it printed as its JSON result line. (The success path runs in report.e2e.test.ts.) */
export async function runReportCommand(args: string[]): Promise<string> {
  const write = process.stdout.write;
  let out = '';
  // Only the command's text lines are taken; the test runner's own (binary) reports pass through.
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    if (typeof chunk === 'string' && chunk.startsWith('{"out"')) {
      out += chunk;
      return true;
    }
    return (write as (...a: unknown[]) => boolean).call(process.stdout, chunk, ...rest);
  }) as typeof process.stdout.write;
  try {
    await reportCommand()
      .exitOverride()
      .configureOutput({ writeErr: () => {} })
      .parseAsync(args, { from: 'user' });
  } finally {
    process.stdout.write = write;
  }
  return out;
}
