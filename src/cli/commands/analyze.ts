// kwshield analyze: the neuron analysis of a saved model on the defender's clean clips (per-neuron gradient
// norms, CLC/BLC zones with --attack-of, a t-SNE or PCA map of the penultimate features), as analysis.json
// and CSV files; --compare adds the same analysis of a second model (e.g. the purified one), labelled "after".
import path from 'node:path';
import { Command } from '@commander-js/extra-typings';
import { type AnalyzeRunResult, analyzeRun } from '../../analysis/analyze-run.ts';
import { defaultCacheDir } from '../../experiments/data-splits.ts';
import { cleanRatio, dataOf, greaterThanZero, layerList, positiveInt } from '../args.ts';
import { report, UsageError } from '../output.ts';
import { checkDataFolder, checkOutputFolder } from '../preflight.ts';
import { barsByKey } from '../progress.ts';

function human(r: AnalyzeRunResult): string {
  const lines = [`analysis of ${r.analyses.map((a) => a.model).join(' and ')} on ${r.cleanClips} clean clips${r.attack ? ` against ${r.attack}` : ''}`];
  for (const a of r.analyses) {
    const grads = Object.entries(a.meanGradient)
      .map(([layer, g]) => `${layer} ${g.toPrecision(3)}`)
      .join(', ');
    lines.push(`  [${a.label}] mean L1 gradient norm per neuron: ${grads}`);
    if (a.zones) {
      const total = Object.values(a.zones).reduce((x, y) => x + y, 0);
      lines.push(
        `  [${a.label}] zones of ${total} neurons: clean ${a.zones.clean}, backdoor ${a.zones.backdoor}, hybrid ${a.zones.hybrid}, redundant ${a.zones.redundant}`,
      );
    }
    lines.push(`  [${a.label}] ${a.embedding} map of ${a.points} points; ${a.file}`);
  }
  for (const note of r.notes) lines.push(`  note: ${note}`);
  lines.push(`  files: ${r.files.map((f) => path.basename(f)).join(', ')} in ${r.out} (${r.seconds.toFixed(0)} s)`);
  return lines.join('\n');
}

export function analyzeCommand(): Command {
  return new Command('analyze')
    .description(
      "neuron analysis of a model on the defender's clean clips: per-neuron gradient norms, CLC/BLC zones (with --attack-of) and a 2-D map of the penultimate features, as JSON and CSV",
    )
    .requiredOption('--model <run>', 'the run folder of the model to analyse')
    .option('--data <dir>', 'the Speech Commands folder (default: the one the model was trained on)')
    .option('--attack-of <run>', 'the attack run the model came from: its trigger gives BLC, zones and triggered points; its poisoned clips are left out')
    .option('--compare <run>', 'a second model of the same configuration (e.g. the purified one), analysed on the same clips and labelled "after"')
    .option('--layers <a,b>', 'neuron layers to analyse (default: the last two conv layers, as the GN-FT paper)', layerList)
    .option('--clean-ratio <x>', "the defender's share of the clean training clips, class-stratified", cleanRatio, 0.05)
    .option('--embedding <method>', 'tsne | pca', 'tsne')
    .option('--max-points <n>', 'at most this many clips in the map (exact t-SNE)', greaterThanZero('--max-points', { integer: true }), 1000)
    .option('--seed <n>', 'random seed (clean subset, t-SNE start)', positiveInt('--seed'), 0)
    .requiredOption('--out <dir>', 'folder for analysis.json and the CSV files')
    .option('--no-cache', 'do not read or write the feature cache')
    .option('--json', 'print the result as one JSON line')
    .action(async (o) => {
      if (o.embedding !== 'tsne' && o.embedding !== 'pca') throw new UsageError(`--embedding must be tsne or pca, got '${o.embedding}'`);
      if (o.compare && path.resolve(o.compare) === path.resolve(o.model)) throw new UsageError('--compare must be another model than --model');
      checkOutputFolder(o.out);
      checkDataFolder(dataOf(o.model, o.data), o.data ? '--data' : `the data of ${o.model}`);
      const progress = barsByKey();
      const result = await analyzeRun({
        model: o.model,
        data: dataOf(o.model, o.data),
        out: o.out,
        attackOf: o.attackOf,
        compare: o.compare,
        layers: o.layers,
        cleanRatio: o.cleanRatio,
        seed: o.seed,
        embedding: o.embedding,
        maxPoints: o.maxPoints,
        cacheDir: o.cache ? path.join(defaultCacheDir(), 'features') : undefined,
        onStage: (s) => process.stderr.write(`${s}\n`),
        onProgress: progress,
      });
      report(Boolean(o.json), result, () => human(result));
    });
}
