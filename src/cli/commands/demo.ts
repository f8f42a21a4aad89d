// kwshield demo: the main job on the embedded default data. This first form synthesizes the small
// SCD-10 set (once; it is cached), trains a ResNet and evaluates it. The attack, the defenses and the
// report join it as they land.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Command } from '@commander-js/extra-typings';
import { synthesizeSpeechCommands } from '../../data/synth.ts';
import { defaultCacheDir } from '../../experiments/data-splits.ts';
import { trainRun } from '../../experiments/train-run.ts';
import { modelNames } from '../../models/index.ts';
import { percent, positiveInt, report } from '../output.ts';
import { createProgress, type Progress } from '../progress.ts';
import { trainingProgress } from '../training-progress.ts';

export function demoCommand(): Command {
  return new Command('demo')
    .description('synthesize a small Speech Commands set, train a model on it and evaluate it')
    .option('--out <dir>', 'run folder', 'runs/demo')
    .option('--quick', 'a tiny data set and 3 epochs (a smoke test, not a meaningful accuracy)')
    .option('--model <name>', `one of ${modelNames().join(', ')}`, 'resnet')
    .option('--data <dir>', 'use this Speech Commands folder instead of the synthetic one')
    .option('--epochs <n>', 'training epochs', positiveInt('--epochs'))
    .option('--seed <n>', 'random seed', positiveInt('--seed'), 0)
    .option('--force', 'replace a finished run in --out')
    .option('--json', 'print the result as one JSON line')
    .action(async (o) => {
      const preset = o.quick ? 'tiny' : 'small';
      const data = o.data ?? path.join(defaultCacheDir(), 'synth', `${preset}-scd10-seed${o.seed}`);
      if (!o.data && !existsSync(path.join(data, 'synth.json'))) {
        process.stderr.write(`synthesizing the ${preset} SCD-10 set into ${data} (once; later runs reuse it)\n`);
        let bar: Progress | undefined;
        await synthesizeSpeechCommands({
          out: data,
          preset,
          words: 'scd10',
          seed: o.seed,
          force: true,
          onProgress: (done, total) => {
            bar ??= createProgress('synth', total);
            bar.update(done);
          },
        });
        bar?.finish();
      }
      let bar: Progress | undefined;
      const epochs = o.epochs ?? (o.quick ? 3 : 12);
      const result = await trainRun({
        data,
        model: o.model,
        out: o.out,
        epochs,
        seed: o.seed,
        force: o.force,
        resume: !o.force,
        onStage: (stage) => process.stderr.write(`${stage}\n`),
        onExtract: (split, done, total) => {
          if (done === Math.min(512, total)) bar = createProgress(`features ${split}`, total);
          bar?.update(done);
          if (done === total) bar?.finish();
        },
        ...trainingProgress(epochs),
      });
      report(Boolean(o.json), { ...result, data }, () =>
        [
          `data: ${data}`,
          `model: ${result.model}, ${result.epochs} epochs in ${result.seconds.toFixed(0)} s (${result.samplesPerSecond.toFixed(0)} samples/s)`,
          `clean accuracy (test split): ${percent(result.cleanAccuracy)}`,
          ...Object.entries(result.perClassAccuracy).map(([c, a]) => `  ${c.padEnd(6)} ${percent(a)}`),
          `run folder: ${result.out}`,
        ].join('\n'),
      );
    });
}
