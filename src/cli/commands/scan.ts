// kwshield scan: is this model backdoored? With --references (clean models of the same configuration, e.g. from
// `kwshield references build`): a verdict, "backdoor found (target, probe, p)" or "no backdoor found by these
// probes", with the references it was measured against and its false-alarm bound (analysis/probe-bank.ts). Without
// references: "uncalibrated", Neural Cleanse's and the gradient signature's scores only. With --inputs, which WAV
// clips of a folder carry a trigger: STRIP entropy and label stability per clip, side by side, each flagged beyond
// a threshold set on the defender's clean clips for the same false-alarm share.
import path from 'node:path';
import { Command } from '@commander-js/extra-typings';
import type { FamilyResult } from '../../analysis/probe-bank.ts';
import {
  expandReferenceRuns,
  type ReferenceScanRunResult,
  referenceScanRun,
  type ScanInputsResult,
  type ScanRunResult,
  scanInputs,
  scanRun,
} from '../../analysis/scan-run.ts';
import type { ProbeRates } from '../../analysis/transform-probe.ts';
import { defaultCacheDir } from '../../experiments/data-splits.ts';
import { cleanRatio, commaList, dataOf, greaterThanZero, layerList, positiveInt, share } from '../args.ts';
import { report, UsageError } from '../output.ts';
import { createProgress, type Progress } from '../progress.ts';

function modelReport(r: ScanRunResult): string {
  const width = Math.max(5, ...r.perClass.map((c) => c.class.length));
  return [
    r.statement,
    `  Neural Cleanse anomaly index ${r.anomalyIndex.toFixed(2)} (smallest reversed mask: '${r.smallestMask}'; its paper flags above 2, which on the measured zoo was right on 38% of the models)`,
    `  ${'class'.padEnd(width)}  mask    success  anomaly`,
    ...r.perClass.map(
      (c) =>
        `  ${c.class.padEnd(width)}  ${c.maskL1.toFixed(4)}  ${(100 * c.success).toFixed(0).padStart(5)}%${c.reached ? ' ' : '*'}  ${c.anomalyIndex.toFixed(2)}${c.label === r.smallestMaskLabel ? '  <- smallest mask' : ''}`,
    ),
    ...(r.perClass.some((c) => !c.reached) ? ['  * never reached the success threshold within the steps: its last mask is shown'] : []),
    `  gradient signature ${r.gradientSignature.score.toFixed(3)} (mean log tail ratio of per-neuron gradient norms: ${r.gradientSignature.layers.map((l) => `${l.layer} ${l.tailRatio.toFixed(2)}`).join(', ')}; a score, no threshold)`,
    `  ${r.neuralCleanse.steps} steps x ${r.neuralCleanse.batchSize} clips per class on ${r.neuralCleanse.clips} of ${r.clips} clean clips; ${(r.seconds.neuralCleanse + r.seconds.gradients).toFixed(0)} s`,
  ].join('\n');
}

/** A rate family's evidence (transforms, additive sounds): the probe's rate into the class on the model and at most on the references. */
function ratesLine(f: FamilyResult): string | undefined {
  if (f.family !== 'transform' && f.family !== 'additive') return undefined;
  const { subject, references } = f.measurements as { subject: ProbeRates; references: ProbeRates[] };
  const t = subject.transforms.indexOf(f.detail);
  const c = subject.classes.indexOf(f.target);
  const rate = (p: ProbeRates) => (p.offClass[c] ? p.hits[t][c] / p.offClass[c] : 0);
  const percent = (x: number) => `${(100 * x).toFixed(0)}%`;
  return `    '${f.detail}' sends ${percent(rate(subject))} of the other classes' clean clips to '${f.target}'; the references at most ${percent(Math.max(...references.map(rate)))}`;
}

function referenceReport(r: ReferenceScanRunResult): string {
  return [
    r.statement,
    ...r.families.flatMap((f) => [
      `  ${f.family} (${f.probes}): score ${f.score.toFixed(2)} at '${f.detail}' -> '${f.target}', p = ${f.pValue.toPrecision(2)}${f.fired ? " (larger than every reference's own)" : ''}; the references' own: ${f.referenceScores.map((s) => s.toFixed(2)).join(', ')}`,
      ...[ratesLine(f)].filter((line): line is string => line !== undefined),
    ]),
    ...r.skipped.map((f) => `  ${f.family}: not probed (${f.reason})`),
    `  on ${r.clips} clean clips (${(100 * r.cleanRatio).toFixed(1)}% of the training split); ${r.seconds.toFixed(0)} s`,
  ].join('\n');
}

const runList = commaList('--references', 'name run folders, e.g. refs/clean-s10,refs/clean-s11,refs/clean-s12');

function inputsReport(r: ScanInputsResult): string {
  const share = `${100 * r.falseRejection}%`;
  const width = Math.max(9, ...r.clips.map((c) => c.predicted.length));
  return [
    `STRIP flagged ${r.flagged.strip} of ${r.clips.length} clips (entropy < ${r.strip.threshold.toFixed(4)}, ${r.strip.mixes} blends each); label stability flagged ${r.flagged.stability} (score > ${r.stability.threshold.toFixed(3)}); each threshold lets ${share} of ${r.cleanClips} of the defender's clean clips through as false alarms`,
    `  stability = share of ${r.stability.perturbations.breaking.length} word-breaking perturbations that keep the label minus share of ${r.stability.perturbations.preserving.length} word-keeping ones that keep it`,
    `  strip     entropy  stability  score  ${'predicted'.padEnd(width)}  file`,
    ...r.clips.map(
      (c) =>
        `  ${c.strip.flagged ? 'FLAGGED' : '-      '}   ${c.strip.entropy.toFixed(4)}  ${c.stability.flagged ? 'FLAGGED  ' : '-        '}  ${c.stability.score.toFixed(2).padStart(5)}  ${c.predicted.padEnd(width)}  ${c.file}`,
    ),
  ].join('\n');
}

export function scanCommand(): Command {
  return new Command('scan')
    .description(
      'is a model backdoored? With --references: "backdoor found" or "no backdoor found by these probes", calibrated against clean models of the same configuration (kwshield references build); without: "uncalibrated", scores only. With --inputs: flag WAV clips that carry a trigger (STRIP and label stability)',
    )
    .requiredOption('--model <run>', 'the run folder of the model to scan')
    .option('--data <dir>', 'the Speech Commands folder of clean clips (default: the one the model was trained on)')
    .option('--inputs <folder>', 'a folder of WAV clips to check for triggers (STRIP and label stability) instead of scanning the model')
    .option('--clean-ratio <x>', "the defender's share of the clean training clips, class-stratified", cleanRatio, 0.05)
    .option('--layers <a,b>', 'layers of the gradient signature (default: the last two conv layers)', layerList)
    .option('--steps <n>', 'Neural Cleanse steps (default: 150 for spectral models, 50 for raw-waveform ones)', greaterThanZero('--steps', { integer: true }))
    .option(
      '--batch-size <n>',
      'Neural Cleanse clips per class and step (default: 8 spectral, 2 raw-waveform)',
      greaterThanZero('--batch-size', { integer: true }),
    )
    .option(
      '--references <runs>',
      'clean models of the same family, front-end and classes to calibrate against: run folders, or folders of run folders, comma-separated (at least 3; n bound the false alarms at 1/(n+1) per probe family)',
      runList,
    )
    .option('--mixes <n>', 'STRIP: clean clips blended with each input', greaterThanZero('--mixes', { integer: true }), 32)
    .option(
      '--frr <x>',
      "--inputs: share of the defender's clean clips each detector may flag; sets both thresholds",
      share('--frr', { example: '0.01' }),
      0.01,
    )
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
        if (o.references) throw new UsageError('--references calibrates the model scan; leave it out with --inputs');
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
          if (given !== undefined) throw new UsageError(`${flag} belongs to the uncalibrated Neural Cleanse scores; leave it out with --references`);
        }
        const result = await referenceScanRun({
          model: o.model,
          references: expandReferenceRuns(o.references, o.model),
          data,
          cleanRatio: o.cleanRatio,
          seed: o.seed,
          onStage,
        });
        report(Boolean(o.json), result, () => referenceReport(result));
        return;
      }
      let bar: Progress | undefined;
      const result = await scanRun({
        model: o.model,
        data,
        cleanRatio: o.cleanRatio,
        seed: o.seed,
        layers: o.layers,
        steps: o.steps,
        batchSize: o.batchSize,
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
