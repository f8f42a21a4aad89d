// kwshield analyze: the neuron analysis of a saved model on the defender's clean clips (per-neuron gradient
// norms, CLC/BLC zones with --attack-of, a t-SNE or PCA map of the penultimate features), as analysis.json
// and CSV files; --compare adds the same analysis of a second model (e.g. the purified one), labelled "after".
import path from 'node:path';
import { Command, InvalidArgumentError } from '@commander-js/extra-typings';
import { type AnalyzeRunResult, analyzeRun } from '../../analysis/analyze-run.ts';
import { defaultCacheDir } from '../../experiments/data-splits.ts';
import { readManifest } from '../../models/checkpoint.ts';
import { greaterThanZero, positiveInt, report, UsageError } from '../output.ts';
import { checkDataFolder, checkOutputFolder } from '../preflight.ts';
import { createProgress, type Progress } from '../progress.ts';

/** A number in (0, 1], or a usage error naming the option. */
export function unitRatio(name: string) {
  return (value: string) => {
    const n = Number(value);
    if (!(Number.isFinite(n) && n > 0 && n <= 1)) throw new InvalidArgumentError(`${name} must be a number in (0, 1], e.g. 0.05, got '${value}'`);
    return n;
  };
}

/** A comma-separated list of layer names. */
export function layerList(value: string): string[] {
  const layers = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (layers.length === 0) throw new InvalidArgumentError(`--layers must name at least one layer, e.g. layer3.1.conv2,conv2d, got '${value}'`);
  return layers;
}

/** --data, or the data folder the model's run recorded. */
export function dataOf(model: string, data: string | undefined): string {
  if (data) return data;
  const recorded = readManifest(model).provenance?.data;
  if (typeof recorded !== 'string') throw new UsageError(`--data is needed: ${model}/model.json does not say which data the model was trained on`);
  return recorded;
}

/** Progress bars keyed by stage, on stderr. */
export function stageProgress(): (stage: string, done: number, total: number) => void {
  const bars = new Map<string, Progress>();
  return (stage, done, total) => {
    let bar = bars.get(stage);
    if (!bar) {
      bar = createProgress(stage, total);
      bars.set(stage, bar);
    }
    bar.update(done);
    if (done === total) bar.finish();
  };
}

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
    .option('--clean-ratio <x>', "the defender's share of the clean training clips, class-stratified", unitRatio('--clean-ratio'), 0.05)
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
      const progress = stageProgress();
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
