// kwshield train: train a clean model on a Speech Commands folder.
import { Command } from '@commander-js/extra-typings';
import { type RecipeName, recipes } from '../../experiments/train.ts';
import { trainRun } from '../../experiments/train-run.ts';
import { modelNames } from '../../models/index.ts';
import { featureCacheDir, greaterThanZero, positiveInt, runFolderOptions } from '../args.ts';
import { percent, report } from '../output.ts';
import { checkDataFolder, checkOutputFolder } from '../preflight.ts';
import { stageLine } from '../progress.ts';
import { trainingProgress } from '../training-progress.ts';

export function trainCommand(): Command {
  return runFolderOptions(
    new Command('train')
      .description('train a clean model; writes model.safetensors, model.json, metrics.json and log.jsonl into --out')
      .requiredOption('--data <dir>', 'a Speech Commands folder (real or from `kwshield data synth`)')
      .option('--model <name>', `one of ${modelNames().join(', ')}`, 'resnet')
      .option('--recipe <name>', 'fast | paper', 'fast')
      .option('--epochs <n>', "epochs (default: the recipe's)", greaterThanZero('--epochs', { integer: true }))
      .option('--batch-size <n>', "batch size (default: the recipe's, or the model's need for it)", greaterThanZero('--batch-size', { integer: true }))
      .option('--lr <x>', "peak learning rate (default: the recipe's)", greaterThanZero('--lr'))
      .option('--seed <n>', 'random seed', positiveInt('--seed'), 0),
    'run folder',
  ).action(async (o) => {
    if (o.recipe !== 'fast' && o.recipe !== 'paper') throw new Error(`--recipe must be fast or paper, got '${o.recipe}'`);
    checkOutputFolder(o.out);
    checkDataFolder(o.data);
    const result = await trainRun({
      data: o.data,
      model: o.model,
      out: o.out,
      recipe: o.recipe as RecipeName,
      epochs: o.epochs,
      seed: o.seed,
      overrides: { ...(o.batchSize ? { batchSize: o.batchSize } : {}), ...(o.lr ? { lr: o.lr } : {}) },
      resume: o.resume,
      force: o.force,
      cacheDir: featureCacheDir(o.cache),
      onStage: stageLine,
      ...trainingProgress(o.epochs ?? recipes[o.recipe as RecipeName].epochs),
    });
    report(
      Boolean(o.json),
      result,
      () =>
        `${result.model}: clean accuracy ${percent(result.cleanAccuracy)} on the test split after ${result.epochs} epochs (${result.seconds.toFixed(0)} s); run in ${result.out}`,
    );
  });
}
