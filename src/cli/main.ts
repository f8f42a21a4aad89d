// The `kwshield` command (specs/cli.md): one program, subcommands as thin layers over the library.
// Exit codes: 0 success, 2 usage error, 1 failure with a message that names the input and the fix.
import { Command, CommanderError } from '@commander-js/extra-typings';
import { analyzeCommand } from './commands/analyze.ts';
import { attackCommand } from './commands/attack.ts';
import { dataCommand } from './commands/data.ts';
import { defendCommand } from './commands/defend.ts';
import { demoCommand } from './commands/demo.ts';
import { evalCommand } from './commands/eval.ts';
import { featuresCommand } from './commands/features.ts';
import { gridCommand } from './commands/grid.ts';
import { importCommand } from './commands/import.ts';
import { referencesCommand } from './commands/references.ts';
import { reportCommand } from './commands/report.ts';
import { resultsCommand } from './commands/results.ts';
import { scanCommand } from './commands/scan.ts';
import { trainCommand } from './commands/train.ts';
import { UsageError } from './output.ts';

export function buildProgram(): Command {
  const program = new Command('kwshield')
    .description('Attack, detect and remove backdoors in keyword-spotting models')
    .option('--debug', 'print stack traces on errors')
    .exitOverride()
    .showHelpAfterError();
  for (const command of [
    demoCommand(),
    dataCommand(),
    featuresCommand(),
    trainCommand(),
    importCommand(),
    attackCommand(),
    defendCommand(),
    evalCommand(),
    analyzeCommand(),
    scanCommand(),
    referencesCommand(),
    gridCommand(),
    resultsCommand(),
    reportCommand(),
  ]) {
    program.addCommand(command.exitOverride());
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? 0 : 2;
    }
    if (error instanceof UsageError) {
      process.stderr.write(`kwshield: ${error.message} (see kwshield help)\n`);
      return 2;
    }
    const debug = argv.includes('--debug');
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`kwshield: ${debug && error instanceof Error ? error.stack : message}\n`);
    return 1;
  }
}
