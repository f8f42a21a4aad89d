// kwshield attack: poison a data set with one of the seven attacks, train the backdoored model and
// measure it beside the clean model of the same configuration.
import { Command } from '@commander-js/extra-typings';
import { attackNames, parseOptionPairs } from '../../attacks/index.ts';
import { frontEndNames } from '../../audio/frontends.ts';
import { attackRun } from '../../experiments/attack-run.ts';
import { type RecipeName, recipes } from '../../experiments/train.ts';
import { modelNames } from '../../models/index.ts';
import { collect, featureCacheDir, greaterThanZero, oneOf, positiveInt, runFolderOptions, share } from '../args.ts';
import { percent, report, UsageError } from '../output.ts';
import { checkDataFolder, checkOutputFolder } from '../preflight.ts';
import { barsByKey, extractionProgress, stageLine } from '../progress.ts';
import { trainingProgress } from '../training-progress.ts';

export function attackCommand(): Command {
  return runFolderOptions(
    new Command('attack')
      .description('poison the training split, train the backdoored model, evaluate CA/ASR/RA beside the clean model; saves model, trigger and poison plan')
      .requiredOption('--data <dir>', 'a Speech Commands folder (real or from `kwshield data synth`)')
      .requiredOption('--attack <name>', `one of ${attackNames().join(', ')}`, oneOf('attack', attackNames))
      .option('--model <name>', `one of ${modelNames().join(', ')}`, oneOf('model', modelNames), 'resnet')
      .option('--front-end <name>', `default: the attack's choice for the model (${frontEndNames.join(', ')})`)
      .option('--poison-ratio <x>', 'share of the training split to poison, in (0, 1)', share('--poison-ratio', { example: '0.1' }), 0.1)
      .option('--target <word>', 'the target word', 'up')
      .option('-o, --option <key=value>', 'an attack option (repeatable), e.g. -o size=3', collect, [] as string[])
      .option('--seed <n>', 'random seed (poison plan, trigger, training)', positiveInt('--seed'), 0)
      .option('--recipe <name>', 'fast | paper', 'fast')
      .option('--epochs <n>', "training epochs (default: the recipe's)", positiveInt('--epochs'))
      .option('--batch-size <n>', 'training batch size', greaterThanZero('--batch-size', { integer: true }))
      .option('--lr <x>', 'peak learning rate', greaterThanZero('--lr'))
      .option('--clean-run <dir>', 'a finished clean run of the same model and front-end to compare with (default: trained once and cached)')
      .option('--examples <n>', 'write N clean/triggered WAV pairs to RUN/examples', positiveInt('--examples'), 0),
    'run folder',
  ).action(async (o) => {
    if (o.recipe !== 'fast' && o.recipe !== 'paper') throw new UsageError(`--recipe must be fast or paper, got '${o.recipe}'`);
    checkOutputFolder(o.out);
    checkDataFolder(o.data);
    const epochs = o.epochs ?? recipes[o.recipe as RecipeName].epochs;
    const result = await attackRun({
      data: o.data,
      out: o.out,
      attack: o.attack,
      model: o.model,
      frontEnd: o.frontEnd,
      poisonRatio: o.poisonRatio,
      target: o.target,
      seed: o.seed,
      attackOptions: parseOptionPairs(o.option),
      recipe: o.recipe as RecipeName,
      epochs: o.epochs,
      overrides: { ...(o.batchSize ? { batchSize: o.batchSize } : {}), ...(o.lr ? { lr: o.lr } : {}) },
      cleanRun: o.cleanRun,
      examples: o.examples,
      resume: o.resume,
      force: o.force,
      cacheDir: featureCacheDir(o.cache),
      onStage: stageLine,
      onExtract: extractionProgress(),
      onAttackProgress: barsByKey(),
      ...trainingProgress(epochs),
    });
    report(Boolean(o.json), result, () =>
      [
        `${result.attack}${result.substitution ? ` (${result.substitution})` : ''} on ${result.model} (${result.frontEnd}): ${result.poisoned} of ${result.trainClips} training clips poisoned (${result.labelMode}-label, target '${result.target}')`,
        `  backdoored model: CA ${percent(result.backdoored.ca)}  ASR ${percent(result.backdoored.asr)}  RA ${percent(result.backdoored.ra)}`,
        `  clean model:      CA ${percent(result.clean.ca)}  false-trigger rate ${percent(result.clean.asr)}  RA ${percent(result.clean.ra)}`,
        `  ${result.seconds.total.toFixed(0)} s; run folder ${result.out}${result.examples.length ? `; examples in ${result.out}/examples` : ''}`,
      ].join('\n'),
    );
  });
}
