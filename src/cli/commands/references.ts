// kwshield references build: clean reference models of a run's configuration, the calibration of
// `kwshield scan --references` (experiments/reference-build.ts).
import { Command, InvalidArgumentError } from '@commander-js/extra-typings';
import { buildReferences, type ReferenceShareName, referenceShares } from '../../experiments/reference-build.ts';
import { cleanRatio, featureCacheDir, positiveInt } from '../args.ts';
import { percent, report } from '../output.ts';
import { checkOutputFolder } from '../preflight.ts';
import { stageLine } from '../progress.ts';
import { trainingProgress } from '../training-progress.ts';

function shareOf(value: string): ReferenceShareName {
  if (!(referenceShares as readonly string[]).includes(value)) throw new InvalidArgumentError(`--share must be full or defender, got '${value}'`);
  return value as ReferenceShareName;
}

function buildCommand(): Command {
  return new Command('build')
    .exitOverride()
    .description(
      "train N clean reference models of a run's configuration (model, front-end, classes, data, recipe, epochs from its model.json) at seeds --seed-base.., one run folder each in --out; resumable: finished references are skipped",
    )
    .requiredOption('--like <run>', 'the run folder whose configuration the references copy (the model you will scan)')
    .requiredOption('--count <n>', "how many references (n bound the scan's false alarms at 1/(n+1) per probe family; at least 3)", positiveInt('--count'))
    .requiredOption('--out <dir>', 'the folder of reference run folders (give it to scan --references)')
    .option(
      '--share <which>',
      "what they train on: full (the whole clean training split of the data) or defender (only the defender's clean share, --clean-ratio of it, the clips the scan probes with); the scan reports which",
      shareOf,
      'full' as ReferenceShareName,
    )
    .option('--seed-base <n>', "the first reference's seed; the others follow (must not include the run's own seed)", positiveInt('--seed-base'), 100)
    .option('--data <dir>', 'the Speech Commands folder (default: the one the run was trained on)')
    .option('--clean-ratio <x>', "with --share defender: the defender's share of the training split, class-stratified", cleanRatio, 0.05)
    .option('--no-cache', 'do not read or write the feature cache')
    .option('--json', 'print the result as one JSON line')
    .action(async (o) => {
      checkOutputFolder(o.out);
      const result = await buildReferences({
        like: o.like,
        count: o.count,
        out: o.out,
        share: o.share,
        seedBase: o.seedBase,
        data: o.data,
        cleanRatio: o.cleanRatio,
        cacheDir: featureCacheDir(o.cache),
        onStage: stageLine,
        onReference: (i, total, run, status) => process.stderr.write(`reference ${i}/${total}: ${run}${status === 'skipped' ? ' (finished, skipped)' : ''}\n`),
        trainingProgress,
      });
      report(Boolean(o.json), result, () =>
        [
          `${result.references.length} references of ${result.model} on ${result.frontEnd} (${result.epochs} epochs, share ${result.share}) in ${result.out}: ${result.references.filter((r) => r.status === 'trained').length} trained, ${result.references.filter((r) => r.status === 'skipped').length} already there`,
          ...result.references.map(
            (r) => `  ${r.run}  seed ${r.seed}  ${r.status}${r.cleanAccuracy === undefined ? '' : `  clean accuracy ${percent(r.cleanAccuracy)}`}`,
          ),
          `scan with: kwshield scan --model ${result.like} --references ${result.out}`,
        ].join('\n'),
      );
    });
}

export function referencesCommand(): Command {
  return new Command('references').description('clean reference models that calibrate kwshield scan').addCommand(buildCommand());
}
