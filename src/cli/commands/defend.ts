// kwshield defend: purify a saved model with a defense and the defender's clean data; with --attack-of,
// CA/ASR/RA before and after, and DER.
import { Command } from '@commander-js/extra-typings';
import { defenseNames } from '../../defenses/index.ts';
import type { DefenseEpoch } from '../../defenses/types.ts';
import { type DefenseRecipe, defendRun } from '../../experiments/defend-run.ts';
import { readManifest } from '../../models/checkpoint.ts';
import { parseOptionPairs } from '../../options/options.ts';
import { cleanRatio, collect, dataOf, featureCacheDir, oneOf, positiveInt, runFolderOptions } from '../args.ts';
import { percent, report, UsageError } from '../output.ts';
import { checkDataFolder, checkOutputFolder } from '../preflight.ts';
import { createProgress, extractionProgress, type Progress, stageLine, trainingEta } from '../progress.ts';

export function defendCommand(): Command {
  return runFolderOptions(
    new Command('defend')
      .description('purify a model (a run folder) with a defense and a clean subset of the training split; the result is a run folder')
      .requiredOption('--model <run>', 'the run folder of the model to purify')
      .option('--data <dir>', 'the Speech Commands folder (default: the one the model was trained on)')
      .requiredOption('--defense <name>', `one of ${defenseNames().join(', ')}`, oneOf('defense', defenseNames))
      .option('--clean-ratio <x>', "the defender's share of the clean training clips, class-stratified", cleanRatio, 0.05)
      .option('--recipe <name>', "default (the project's) | paper (the source's settings)", 'default')
      .option('-o, --option <key=value>', 'a defense option over the recipe (repeatable), e.g. -o lr=0.001', collect, [] as string[])
      .option('--attack-of <run>', 'the attack run the model came from: its poisoned clips are left out, CA/ASR/RA measured before and after')
      .option('--seed <n>', 'random seed (clean subset, shuffles)', positiveInt('--seed'), 0),
    'run folder for the purified model',
  ).action(async (o) => {
    if (o.recipe !== 'default' && o.recipe !== 'paper') throw new UsageError(`--recipe must be default or paper, got '${o.recipe}'`);
    const data = dataOf(o.model, o.data);
    checkOutputFolder(o.out);
    checkDataFolder(data, o.data ? '--data' : `the data of ${o.model}`, readManifest(o.model).classes);
    let bar: Progress | undefined;
    const epochSeconds: number[] = [];
    const result = await defendRun({
      model: o.model,
      data,
      defense: o.defense,
      out: o.out,
      cleanRatio: o.cleanRatio,
      recipe: o.recipe as DefenseRecipe,
      options: parseOptionPairs(o.option),
      attackOf: o.attackOf,
      seed: o.seed,
      cacheDir: featureCacheDir(o.cache),
      resume: o.resume,
      force: o.force,
      onStage: stageLine,
      onExtract: extractionProgress(),
      progress: {
        stage: stageLine,
        step: (phase, done, total, status) => {
          if (done === 1) bar = createProgress(phase, total);
          bar?.update(done, status);
          if (done === total) {
            bar?.finish();
            bar = undefined;
          }
        },
        epoch: (row: DefenseEpoch) => {
          epochSeconds.push(row.seconds);
          process.stderr.write(
            `${row.phase} epoch ${row.epoch + 1}/${row.epochs}: loss ${row.loss.toFixed(3)}, hold-out ${percent(row.holdoutAccuracy)}, lr ${row.lr.toPrecision(2)}, eta ${trainingEta(epochSeconds, row.epochs - row.epoch - 1)}\n`,
          );
        },
      },
    });
    report(Boolean(o.json), result, () =>
      [
        `${result.defense} (${result.recipe} recipe) on ${result.model}: ${result.cleanClips} clean clips (${(100 * result.cleanRatio).toFixed(1)}%), ${result.seconds.defense.toFixed(0)} s`,
        `  clean hold-out accuracy ${percent(result.report.holdoutBefore)} -> ${percent(result.report.holdoutAfter)}`,
        ...(result.before && result.after
          ? [
              `  before: CA ${percent(result.before.ca)}  ASR ${percent(result.before.asr)}  RA ${percent(result.before.ra)}`,
              `  after:  CA ${percent(result.after.ca)}  ASR ${percent(result.after.asr)}  RA ${percent(result.after.ra)}  DER ${result.der?.toFixed(3)}`,
            ]
          : []),
        `  purified model: ${result.out}`,
      ].join('\n'),
    );
  });
}
