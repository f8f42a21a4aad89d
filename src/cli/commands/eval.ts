// kwshield eval: clean accuracy (per class, confusion) of a saved model on a data folder's split.
import { Command } from '@commander-js/extra-typings';
import { disposeSplits, loadSplits } from '../../experiments/data-splits.ts';
import { evaluate } from '../../experiments/evaluate.ts';
import { loadModel } from '../../models/checkpoint.ts';
import { percent, report } from '../output.ts';

export function evalCommand(): Command {
  return new Command('eval')
    .description('evaluate a saved model (a run folder) on a split of a data folder')
    .requiredOption('--model <run>', 'run folder holding model.json and model.safetensors')
    .requiredOption('--data <dir>', 'a Speech Commands folder')
    .option('--split <name>', 'train | validation | test', 'test')
    .option('--json', 'print the result as one JSON line')
    .action(async (o) => {
      if (!['train', 'validation', 'test'].includes(o.split)) throw new Error(`--split must be train, validation or test, got '${o.split}'`);
      const { model, manifest } = loadModel(o.model);
      try {
        const splits = await loadSplits(o.data, { frontEnd: manifest.frontEnd, words: manifest.classes });
        try {
          const set = splits[o.split as 'train' | 'validation' | 'test'];
          const result = evaluate(model, set);
          const out = {
            model: o.model,
            split: o.split,
            clips: set.size,
            cleanAccuracy: result.accuracy,
            perClassAccuracy: Object.fromEntries(manifest.classes.map((c, i) => [c, result.perClassAccuracy[i]])),
            confusion: result.confusion,
          };
          report(Boolean(o.json), out, () =>
            [
              `clean accuracy ${percent(result.accuracy)} on ${set.size} ${o.split} clips`,
              ...manifest.classes.map((c, i) => `  ${c.padEnd(8)} ${percent(result.perClassAccuracy[i])}`),
            ].join('\n'),
          );
        } finally {
          disposeSplits(splits);
        }
      } finally {
        model.dispose();
      }
    });
}
