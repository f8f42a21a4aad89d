#!/usr/bin/env node
// `kwshield` with the analyze and scan commands added, for their CLI tests until src/cli/main.ts registers
// them (then this is the same program): the exit codes of main() (0, 2 usage, 1 failure with a message).
import { CommanderError } from '@commander-js/extra-typings';
import { analyzeCommand } from '../../src/cli/commands/analyze.ts';
import { scanCommand } from '../../src/cli/commands/scan.ts';
import { buildProgram } from '../../src/cli/main.ts';
import { UsageError } from '../../src/cli/output.ts';

async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  for (const command of [analyzeCommand(), scanCommand()]) {
    if (!program.commands.some((c) => c.name() === command.name())) program.addCommand(command.exitOverride());
  }
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof UsageError) {
      process.stderr.write(`kwshield: ${error.message} (see kwshield help)\n`);
      return 2;
    }
    process.stderr.write(`kwshield: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

process.exitCode = await run(process.argv);
