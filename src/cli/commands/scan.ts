// kwshield scan: is this model backdoored? From the model and clean clips only (Neural Cleanse verdict,
// suspect target, per-class numbers; the gradient-norm signature beside them). With --inputs, which WAV
// clips of a folder carry a trigger (STRIP entropy per clip, flagged under a threshold set on clean clips).
// With --references, against clean models of the same configuration instead (analysis/reference-scan.ts).
import path from 'node:path';
import { Command, InvalidArgumentError } from '@commander-js/extra-typings';
import { referenceStatistics } from '../../analysis/reference-scan.ts';
import {
  expandReferenceRuns,
  type ReferenceScanRunResult,
  referenceScanRun,
  type ScanInputsResult,
  type ScanRunResult,
  scanInputs,
  scanRun,
  type TransformProbeRunResult,
  transformProbeRun,
} from '../../analysis/scan-run.ts';
import { defaultCacheDir } from '../../experiments/data-splits.ts';
import { cleanRatio, commaList, dataOf, greaterThanZero, layerList, positiveInt, share } from '../args.ts';
import { report, UsageError } from '../output.ts';
import { createProgress, type Progress } from '../progress.ts';

function modelReport(r: ScanRunResult): string {
  const width = Math.max(5, ...r.perClass.map((c) => c.class.length));
  return [
    `${r.verdict === 'backdoored' ? 'BACKDOORED' : 'clean'}: anomaly index ${r.score.toFixed(2)} ${r.score > r.threshold ? '>' : '<='} ${r.threshold} (Neural Cleanse, smallest reversed mask), suspect target '${r.suspectTarget}'`,
    `  ${'class'.padEnd(width)}  mask    success  anomaly`,
    ...r.perClass.map(
      (c) =>
        `  ${c.class.padEnd(width)}  ${c.maskL1.toFixed(4)}  ${(100 * c.success).toFixed(0).padStart(5)}%${c.reached ? ' ' : '*'}  ${c.anomalyIndex.toFixed(2)}${c.label === r.suspectLabel ? '  <- suspect' : ''}`,
    ),
    ...(r.perClass.some((c) => !c.reached) ? ['  * never reached the success threshold within the steps: its last mask is shown'] : []),
    `  gradient signature ${r.gradientSignature.score.toFixed(3)} (mean log tail ratio of per-neuron gradient norms: ${r.gradientSignature.layers.map((l) => `${l.layer} ${l.tailRatio.toFixed(2)}`).join(', ')}; not calibrated, not used for the verdict)`,
    `  ${r.neuralCleanse.steps} steps x ${r.neuralCleanse.batchSize} clips per class on ${r.neuralCleanse.clips} of ${r.clips} clean clips; ${(r.seconds.neuralCleanse + r.seconds.gradients).toFixed(0)} s`,
  ].join('\n');
}

function referenceReport(r: ReferenceScanRunResult): string {
  const width = Math.max(5, ...r.perClass.map((c) => c.class.length));
  const fmt = (x: number) => (r.statistic === 'meanProb' ? x.toFixed(4) : x.toFixed(3));
  return [
    `${r.verdict === 'backdoored' ? 'BACKDOORED' : 'clean'}: p = ${r.pValue.toPrecision(2)} ${r.pValue < r.alpha ? '<' : '>='} ${r.alpha} against ${r.references} clean references (${r.statistic}, largest t ${r.score.toFixed(2)}, Bonferroni over ${r.classes.length} classes), suspect target '${r.suspectTarget}'`,
    `  ${'class'.padEnd(width)}  model     references (mean +- sd)  t`,
    ...r.perClass.map(
      (c) =>
        `  ${c.class.padEnd(width)}  ${fmt(c.value).padStart(8)}  ${fmt(c.referenceMean).padStart(8)} +- ${fmt(c.referenceSd).padEnd(8)}     ${c.t.toFixed(2).padStart(6)}${c.label === r.suspectLabel ? '  <- suspect' : ''}`,
    ),
    `  on ${r.clips} clean clips (${(100 * r.cleanRatio).toFixed(1)}% of the training split); ${r.seconds.toFixed(0)} s`,
  ].join('\n');
}

function probeReport(r: TransformProbeRunResult): string {
  const rate = (p: TransformProbeRunResult['rates']['subject'], t: number, c: number) => (p.offClass[c] ? p.hits[t][c] / p.offClass[c] : 0);
  const t = r.rates.subject.transforms.indexOf(r.transform);
  const c = r.classes.indexOf(r.class);
  const largestReference = Math.max(...r.rates.references.map((p) => rate(p, t, c)));
  return [
    `${r.verdict === 'backdoored' ? 'BACKDOORED' : 'clean'}: excess ${r.score.toFixed(2)} over ${r.references} clean references, ${r.verdict === 'backdoored' ? 'larger than' : 'not larger than'} each reference's own (p = ${r.pValue.toFixed(2)}; false alarms at most 1/${r.references + 1}), suspect target '${r.suspectTarget}'`,
    `  '${r.transform}' sends ${(100 * rate(r.rates.subject, t, c)).toFixed(0)}% of the other classes' clean clips to '${r.class}'; the references at most ${(100 * largestReference).toFixed(0)}%`,
    `  references' own excess: ${r.referenceScores.map((s) => s.toFixed(2)).join(', ')}`,
    `  ${r.rates.subject.transforms.length} transforms on ${r.clips} clean clips (${(100 * r.cleanRatio).toFixed(1)}% of the training split); ${r.seconds.toFixed(0)} s`,
  ].join('\n');
}

const runList = commaList('--references', 'name run folders, e.g. refs/clean-s10,refs/clean-s11,refs/clean-s12');

function statisticOf(value: string) {
  if (!(referenceStatistics as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`--statistic must be one of ${referenceStatistics.join(', ')}, got '${value}'`);
  }
  return value as (typeof referenceStatistics)[number];
}

function inputsReport(r: ScanInputsResult): string {
  return [
    `${r.flagged} of ${r.clips.length} clips flagged as triggered (STRIP entropy < ${r.threshold.toFixed(4)}, the ${100 * r.falseRejection}% quantile of ${r.clean.clips} clean clips' entropies; ${r.mixes} blends each)`,
    ...r.clips.map((c) => `  ${c.flagged ? 'TRIGGER' : 'clean  '}  ${c.entropy.toFixed(4)}  ${c.predicted.padEnd(8)}  ${c.file}`),
  ].join('\n');
}

export function scanCommand(): Command {
  return new Command('scan')
    .description('is a model backdoored? A scan from the model and clean clips only; with --inputs, flag WAV clips that carry a trigger (STRIP)')
    .requiredOption('--model <run>', 'the run folder of the model to scan')
    .option('--data <dir>', 'the Speech Commands folder of clean clips (default: the one the model was trained on)')
    .option('--inputs <folder>', 'a folder of WAV clips to check for triggers (STRIP) instead of scanning the model')
    .option('--clean-ratio <x>', "the defender's share of the clean training clips, class-stratified", cleanRatio, 0.05)
    .option('--layers <a,b>', 'layers of the gradient signature (default: the last two conv layers)', layerList)
    .option('--steps <n>', 'Neural Cleanse steps (default: 150 for spectral models, 50 for raw-waveform ones)', greaterThanZero('--steps', { integer: true }))
    .option(
      '--batch-size <n>',
      'Neural Cleanse clips per class and step (default: 8 spectral, 2 raw-waveform)',
      greaterThanZero('--batch-size', { integer: true }),
    )
    .option('--threshold <x>', 'anomaly index above which the model is called backdoored', greaterThanZero('--threshold'), 2)
    .option(
      '--references <runs>',
      'compare with clean models of the same family, front-end and classes: run folders, or folders of run folders, comma-separated (at least 3)',
      runList,
    )
    .option('--statistic <name>', `with --references: the per-class statistic (${referenceStatistics.join(', ')})`, statisticOf)
    .option('--probe', 'with --references: the transform probe (where 18 audio transforms send clean clips) instead of a per-class statistic')
    .option('--alpha <x>', 'with --references: the false-alarm rate of the test on clean models', share('--alpha', { example: '0.01' }), 0.05)
    .option('--mixes <n>', 'STRIP: clean clips blended with each input', greaterThanZero('--mixes', { integer: true }), 32)
    .option('--frr <x>', 'STRIP: share of clean clips allowed to be flagged; sets the threshold', share('--frr', { example: '0.01' }), 0.01)
    .option('--seed <n>', 'random seed', positiveInt('--seed'), 0)
    .option('--no-cache', 'do not read or write the feature cache')
    .option('--json', 'print the result as one JSON line')
    .action(async (o) => {
      const data = dataOf(o.model, o.data);
      const onStage = (s: string) => process.stderr.write(`${s}\n`);
      if (o.inputs) {
        for (const [flag, given] of [
          ['--layers', o.layers],
          ['--steps', o.steps],
          ['--batch-size', o.batchSize],
        ] as const) {
          if (given !== undefined) throw new UsageError(`${flag} belongs to the model scan; leave it out with --inputs`);
        }
        if (o.probe) throw new UsageError('--probe scans the model against references; leave it out with --inputs');
        const result = await scanInputs({
          inputs: o.inputs,
          model: o.model,
          data,
          cleanRatio: o.cleanRatio,
          seed: o.seed,
          mixes: o.mixes,
          falseRejection: o.frr,
          onStage,
        });
        report(Boolean(o.json), result, () => inputsReport(result));
        return;
      }
      if (o.references) {
        for (const [flag, given] of [
          ['--layers', o.layers],
          ['--steps', o.steps],
          ['--batch-size', o.batchSize],
        ] as const) {
          if (given !== undefined) throw new UsageError(`${flag} belongs to the Neural Cleanse scan; leave it out with --references`);
        }
        if (o.probe) {
          if (o.statistic !== undefined) throw new UsageError('--statistic belongs to the per-class reference scan; leave it out with --probe');
          const result = await transformProbeRun({
            model: o.model,
            references: expandReferenceRuns(o.references, o.model),
            data,
            cleanRatio: o.cleanRatio,
            seed: o.seed,
            onStage,
          });
          report(Boolean(o.json), result, () => probeReport(result));
          return;
        }
        const result = await referenceScanRun({
          model: o.model,
          references: expandReferenceRuns(o.references, o.model),
          data,
          cleanRatio: o.cleanRatio,
          seed: o.seed,
          statistic: o.statistic,
          alpha: o.alpha,
          cacheDir: o.cache ? path.join(defaultCacheDir(), 'features') : undefined,
          onStage,
        });
        report(Boolean(o.json), result, () => referenceReport(result));
        return;
      }
      if (o.statistic !== undefined) throw new UsageError('--statistic belongs to the reference scan; give --references too');
      if (o.probe) throw new UsageError('--probe compares the model with clean references; give --references DIR too');
      let bar: Progress | undefined;
      const result = await scanRun({
        model: o.model,
        data,
        cleanRatio: o.cleanRatio,
        seed: o.seed,
        layers: o.layers,
        steps: o.steps,
        batchSize: o.batchSize,
        threshold: o.threshold,
        cacheDir: o.cache ? path.join(defaultCacheDir(), 'features') : undefined,
        onStage,
        onProgress: (done, total) => {
          if (done === 1) bar = createProgress('neural cleanse', total);
          bar?.update(done);
          if (done === total) bar?.finish();
        },
      });
      report(Boolean(o.json), result, () => modelReport(result));
    });
}
