// kwshield report: one self-contained HTML page (tables, figures, provenance) from results folders,
// run folders and analysis folders, with a PNG of every figure beside it.
import { Command } from '@commander-js/extra-typings';
import { buildReport, figuresFolderName, MissingInputError, writeReport } from '../../report/index.ts';
import { collect } from '../args.ts';
import { report, UsageError } from '../output.ts';
import { checkOutputFile } from '../preflight.ts';

export function reportCommand() {
  return new Command('report')
    .description('an HTML report (headline, CA/ASR tables, figures, provenance) from a results folder or run folders; PNGs of the figures beside it')
    .argument('<input...>', 'results folders (one JSON per job), attack or defense run folders, or analysis folders')
    .requiredOption('--out <file>', 'the HTML file to write, e.g. report.html (figures go to <name>-figures/ beside it)')
    .option('--analysis <dir>', 'an analysis folder from kwshield analyze (repeatable)', collect, [] as string[])
    .option('--title <text>', 'the page title (default: what was tested)')
    .option('--force', 'replace an --out file that is not an earlier kwshield report')
    .option('--json', 'print the result as one JSON line')
    .action(async (inputs, o) => {
      if (!/\.html?$/i.test(o.out)) throw new UsageError(`--out must name an .html file, got '${o.out}'`);
      checkOutputFile(o.out);
      let built: Awaited<ReturnType<typeof buildReport>>;
      try {
        built = await buildReport(inputs, { out: o.out, analysis: o.analysis, title: o.title });
      } catch (err) {
        if (err instanceof MissingInputError) throw new Error(err.message);
        throw err;
      }
      if (built.jobs === 0 && built.figures.length === 0) {
        throw new Error(`no job, run or analysis found in ${inputs.join(', ')}; give a results folder, an attack or defense run folder, or an analysis folder`);
      }
      const written = await writeReport(built, o.out, { force: o.force });
      for (const w of built.warnings) process.stderr.write(`warning: ${w}\n`);
      report(
        Boolean(o.json),
        {
          out: written.html,
          figures: written.figures,
          pngs: written.pngs,
          jobs: built.jobs,
          skipped: built.skipped,
          warnings: built.warnings,
          missing: built.missing.map((m) => m.slug),
        },
        () =>
          [
            `report: ${written.html} (${built.jobs} job(s), ${built.figures.length} figure(s))`,
            `  figures as PNG: ${written.figures}/ (${figuresFolderName(o.out)})`,
            ...(built.missing.length ? [`  not shown for want of data: ${built.missing.map((m) => m.title).join('; ')}`] : []),
            ...(built.skipped ? [`  ${built.skipped} input file(s) skipped (listed in the report's Warnings)`] : []),
          ].join('\n'),
      );
    });
}
