// `kwshield scan` as library calls, from a run folder and a data folder only (no attack run):
//   scanRun     is the model backdoored? (scan.ts: Neural Cleanse verdict, gradient signature beside it)
//   referenceScanRun  the same question against clean reference models of the model's configuration
//               (reference-scan.ts: per-class probability on clean clips, a t-test per class)
//   transformProbeRun  the same against references, by where 18 generic audio transforms send clean clips
//               (transform-probe.ts: the excess rate over every reference, a conformal verdict)
//   scanInputs  which WAV clips of a folder carry a trigger? (strip.ts: STRIP entropy per clip, flagged
//               below a threshold set on the defender's clean clips)
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { getFrontEnd } from '../audio/frontends.ts';
import { disposeFeatureSet } from '../data/feature-set.ts';
import { loadModel, type ModelManifest, readManifest } from '../models/checkpoint.ts';
import { noGrad, type Tensor, tidy } from '../torch/index.ts';
import { checkLayers } from './neuron-layers.ts';
import { type ClassProfile, classProfile, compareWithReferences, type ReferenceComparison, type ReferenceStatistic } from './reference-scan.ts';
import { AnalysisInputError, cleanFeatures, defenderClips, waveformsOf } from './run-data.ts';
import { type ScanResult, scanModel } from './scan.ts';
import { quantile, stripEntropies, stripThreshold } from './strip.ts';
import { type ProbeRates, type ProbeVerdict, probeRates, probeTransforms, probeVerdict } from './transform-probe.ts';

export interface ScanRunOptions {
  model: string;
  data: string;
  cleanRatio?: number;
  seed?: number;
  layers?: string[];
  /** Neural Cleanse steps and clips per class and step (default: by input kind, scan.ts neuralCleanseBudget) */
  steps?: number;
  batchSize?: number;
  /** clean clips Neural Cleanse draws from (default 200) */
  clips?: number;
  threshold?: number;
  cacheDir?: string;
  onStage?: (stage: string) => void;
  onProgress?: (done: number, total: number) => void;
}

export interface ScanRunResult extends ScanResult {
  kind: 'scan';
  model: string;
  modelFamily: string;
  classes: string[];
  cleanRatio: number;
  seed: number;
}

export async function scanRun(o: ScanRunOptions): Promise<ScanRunResult> {
  const cleanRatio = o.cleanRatio ?? 0.05;
  const seed = o.seed ?? 0;
  const { model, manifest, spec } = loadModel(o.model);
  try {
    const neuronLayers = spec.neuronLayers(model);
    const layers = o.layers?.length ? checkLayers(model, neuronLayers, o.layers) : undefined;
    const { clips, classes } = await defenderClips(o.data, manifest, { run: o.model, cleanRatio, seed });
    o.onStage?.(`defender's clean data: ${clips.length} clips (${(100 * cleanRatio).toFixed(1)}% of the training split)`);
    const clean = await cleanFeatures(clips, classes, getFrontEnd(manifest.frontEnd), o.cacheDir);
    try {
      const result = scanModel(model, { neuronLayers, inputKind: spec.inputKind }, clean, {
        layers,
        clips: o.clips,
        seed,
        threshold: o.threshold,
        neuralCleanse: { ...(o.steps ? { steps: o.steps } : {}), ...(o.batchSize ? { batchSize: o.batchSize } : {}) },
        onStage: o.onStage,
        onProgress: o.onProgress,
      });
      return { kind: 'scan', model: path.resolve(o.model), modelFamily: manifest.model, classes: manifest.classes, cleanRatio, seed, ...result };
    } finally {
      disposeFeatureSet(clean);
    }
  } finally {
    model.dispose();
  }
}

export interface ReferenceScanRunOptions {
  model: string;
  /** run folders of clean models of the same family, front-end and classes (at least 3) */
  references: string[];
  data: string;
  cleanRatio?: number;
  seed?: number;
  /** default meanProb */
  statistic?: ReferenceStatistic;
  alpha?: number;
  cacheDir?: string;
  onStage?: (stage: string) => void;
}

export interface ReferenceScanRunResult extends ReferenceComparison {
  kind: 'reference-scan';
  model: string;
  modelFamily: string;
  frontEnd: string;
  classes: string[];
  referenceRuns: string[];
  cleanRatio: number;
  seed: number;
  clips: number;
  /** every statistic of the subject and of each reference, in the class order */
  profiles: { subject: ClassProfile; references: ClassProfile[] };
  seconds: number;
}

/**
 * The run folders a --references list names: each item a run folder (it has model.json), or a folder whose
 * subfolders are run folders (every one of them, sorted, except `exclude`: the scanned model may sit among
 * its references' folder).
 */
export function expandReferenceRuns(items: readonly string[], exclude?: string): string[] {
  return items.flatMap((item) => {
    if (existsSync(path.join(item, 'model.json'))) return [item];
    let names: string[];
    try {
      names = readdirSync(item).sort();
    } catch {
      throw new AnalysisInputError(`--references: ${item} is not a run folder or a folder of run folders (no such folder)`);
    }
    const runs = names
      .map((n) => path.join(item, n))
      .filter((d) => existsSync(path.join(d, 'model.json')) && (!exclude || path.resolve(d) !== path.resolve(exclude)));
    if (runs.length === 0) throw new AnalysisInputError(`--references: ${item} holds no run folder (no model.json in it or in its subfolders)`);
    return runs;
  });
}

/** Refuses a reference that is the subject itself or of another configuration, naming what differs. */
function checkReference(subject: { run: string; manifest: ModelManifest }, run: string, manifest: ModelManifest): void {
  if (path.resolve(run) === path.resolve(subject.run)) {
    throw new AnalysisInputError(`--references: ${run} is the model being scanned; a model cannot be its own reference`);
  }
  const differs = (
    [
      ['family', manifest.model, subject.manifest.model],
      ['front-end', manifest.frontEnd, subject.manifest.frontEnd],
      ['classes', manifest.classes.join(','), subject.manifest.classes.join(',')],
    ] as const
  ).filter(([, a, b]) => a !== b);
  if (differs.length) {
    throw new AnalysisInputError(
      `--references: ${run} differs from the scanned model in ${differs.map(([what, a, b]) => `${what} (${a}, the model has ${b})`).join(' and ')}; references must be clean models of the same family, front-end and classes (train them with kwshield train --model ${subject.manifest.model} --seed N)`,
    );
  }
}

export async function referenceScanRun(o: ReferenceScanRunOptions): Promise<ReferenceScanRunResult> {
  const started = Date.now();
  const cleanRatio = o.cleanRatio ?? 0.05;
  const seed = o.seed ?? 0;
  const statistic = o.statistic ?? 'meanProb';
  if (o.references.length < 3) {
    throw new AnalysisInputError(`--references: ${o.references.length} given, the test needs at least 3 clean models (more give a tighter spread)`);
  }
  const subjectManifest = readManifest(o.model);
  for (const run of o.references) checkReference({ run: o.model, manifest: subjectManifest }, run, readManifest(run));
  const { clips, classes } = await defenderClips(o.data, subjectManifest, { run: o.model, cleanRatio, seed });
  o.onStage?.(`defender's clean data: ${clips.length} clips; the model and ${o.references.length} references on them`);
  const clean = await cleanFeatures(clips, classes, getFrontEnd(subjectManifest.frontEnd), o.cacheDir);
  try {
    const profileOf = (run: string) => {
      const { model } = loadModel(run);
      try {
        return classProfile(model, clean);
      } finally {
        model.dispose();
      }
    };
    const subject = profileOf(o.model);
    const references = o.references.map(profileOf);
    const comparison = compareWithReferences(
      subject[statistic],
      references.map((r) => r[statistic]),
      classes,
      { statistic, alpha: o.alpha },
    );
    return {
      kind: 'reference-scan',
      model: path.resolve(o.model),
      modelFamily: subjectManifest.model,
      frontEnd: subjectManifest.frontEnd,
      classes,
      referenceRuns: o.references.map((r) => path.resolve(r)),
      cleanRatio,
      seed,
      clips: clips.length,
      ...comparison,
      profiles: { subject, references },
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    disposeFeatureSet(clean);
  }
}

export interface TransformProbeRunOptions {
  model: string;
  /** run folders of clean models of the same family, front-end and classes (at least 3) */
  references: string[];
  data: string;
  cleanRatio?: number;
  seed?: number;
  onStage?: (stage: string) => void;
}

export interface TransformProbeRunResult extends ProbeVerdict {
  kind: 'transform-probe';
  model: string;
  modelFamily: string;
  frontEnd: string;
  classes: string[];
  referenceRuns: string[];
  references: number;
  cleanRatio: number;
  seed: number;
  clips: number;
  /** the suspect class: the class of the pair with the largest excess */
  suspectTarget: string;
  /** where each transform sends the clean clips, the model's and each reference's */
  rates: { subject: ProbeRates; references: ProbeRates[] };
  seconds: number;
}

/**
 * The transform probe against clean references: the same defender's clips (a class-stratified share of the
 * clean training split) through every probe transform, into the model and into each reference.
 */
export async function transformProbeRun(o: TransformProbeRunOptions): Promise<TransformProbeRunResult> {
  const started = Date.now();
  const cleanRatio = o.cleanRatio ?? 0.05;
  const seed = o.seed ?? 0;
  if (o.references.length < 3) {
    throw new AnalysisInputError(
      `--references: ${o.references.length} given, the transform probe needs at least 3 clean models (more bound the false alarms lower: 1 / (n + 1))`,
    );
  }
  const subjectManifest = readManifest(o.model);
  for (const run of o.references) checkReference({ run: o.model, manifest: subjectManifest }, run, readManifest(run));
  const frontEnd = getFrontEnd(subjectManifest.frontEnd);
  const { clips, classes } = await defenderClips(o.data, subjectManifest, { run: o.model, cleanRatio, seed });
  const transforms = probeTransforms(seed);
  o.onStage?.(`defender's clean data: ${clips.length} clips; ${transforms.length} transforms into the model and ${o.references.length} references`);
  const waves = await waveformsOf(clips, frontEnd);
  try {
    const ratesOf = (run: string) => {
      const { model } = loadModel(run);
      try {
        return probeRates(
          model,
          waves,
          clips.map((c) => c.label),
          classes,
          { sampleRate: frontEnd.sampleRate, toModelInput: (w) => frontEnd.apply(w), transforms },
        );
      } finally {
        model.dispose();
      }
    };
    const subject = ratesOf(o.model);
    const references = o.references.map((run, i) => {
      o.onStage?.(`reference ${i + 1}/${o.references.length}: ${run}`);
      return ratesOf(run);
    });
    const verdict = probeVerdict(subject, references);
    return {
      kind: 'transform-probe',
      model: path.resolve(o.model),
      modelFamily: subjectManifest.model,
      frontEnd: subjectManifest.frontEnd,
      classes,
      referenceRuns: o.references.map((r) => path.resolve(r)),
      references: o.references.length,
      cleanRatio,
      seed,
      clips: clips.length,
      ...verdict,
      suspectTarget: verdict.class,
      rates: { subject, references },
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    waves.dispose();
  }
}

export interface ScanInputsOptions {
  inputs: string;
  model: string;
  data: string;
  cleanRatio?: number;
  seed?: number;
  /** clean clips blended with each input (default 32) */
  mixes?: number;
  /** share of clean clips allowed to be flagged: the threshold's percentile (default 0.01, STRIP's FRR) */
  falseRejection?: number;
  onStage?: (stage: string) => void;
}

export interface ScanInputsResult {
  kind: 'strip';
  model: string;
  inputs: string;
  threshold: number;
  falseRejection: number;
  mixes: number;
  clean: { clips: number; entropy: { min: number; p05: number; median: number; max: number } };
  clips: { file: string; entropy: number; flagged: boolean; predicted: string }[];
  flagged: number;
}

/** The .wav files under a folder, sorted. */
export function wavFiles(folder: string): string[] {
  let info: ReturnType<typeof statSync>;
  try {
    info = statSync(folder);
  } catch {
    throw new AnalysisInputError(`--inputs ${folder}: no such folder`);
  }
  if (!info.isDirectory()) throw new AnalysisInputError(`--inputs ${folder} is not a folder of WAV files`);
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      if (name.startsWith('.')) continue;
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name.toLowerCase().endsWith('.wav')) out.push(full);
    }
  };
  walk(folder);
  if (out.length === 0) throw new AnalysisInputError(`--inputs ${folder} holds no .wav file`);
  return out;
}

/**
 * STRIP over WAV clips: blends of waveforms (what a microphone would pick up), through the model's
 * front-end. A feature-domain trigger (Audio BadNets on MFCC) cannot be in a WAV file at all; the waveform
 * attacks can.
 */
export async function scanInputs(o: ScanInputsOptions): Promise<ScanInputsResult> {
  const cleanRatio = o.cleanRatio ?? 0.05;
  const seed = o.seed ?? 0;
  const mixes = o.mixes ?? 32;
  const falseRejection = o.falseRejection ?? 0.01;
  if (!(falseRejection > 0 && falseRejection < 1)) throw new AnalysisInputError(`--frr must be in (0, 1), got ${falseRejection}`);
  const files = wavFiles(o.inputs);
  const { model, manifest } = loadModel(o.model);
  const owned: Tensor[] = [];
  try {
    const frontEnd = getFrontEnd(manifest.frontEnd);
    const { clips } = await defenderClips(o.data, manifest, { run: o.model, cleanRatio, seed });
    o.onStage?.(`STRIP threshold from ${clips.length} clean clips (${mixes} blends each, ${100 * falseRejection}% false rejections)`);
    const pool = await waveformsOf(clips, frontEnd);
    owned.push(pool);
    const inputs = await waveformsOf(files, frontEnd);
    owned.push(inputs);
    const toModelInput = (w: Tensor) => frontEnd.apply(w);
    const cleanEntropies = stripEntropies(model, pool, pool, { mixes, seed, toModelInput, selfInPool: (i) => i });
    const threshold = stripThreshold(cleanEntropies, falseRejection);
    o.onStage?.(`STRIP on ${files.length} clips of ${o.inputs}`);
    const entropies = stripEntropies(model, inputs, pool, { mixes, seed: seed + 1, toModelInput });
    model.eval();
    const predicted: number[] = [];
    for (let start = 0; start < files.length; start += 64) {
      const count = Math.min(64, files.length - start);
      predicted.push(
        ...noGrad(() =>
          tidy(() =>
            model
              .forward(frontEnd.apply(inputs.narrow(0, start, count)))
              .argmax(1)
              .toArray(),
          ),
        ),
      );
    }
    const rows = files.map((file, i) => ({
      file: path.relative(o.inputs, file),
      entropy: entropies[i],
      flagged: entropies[i] < threshold,
      predicted: manifest.classes[predicted[i]],
    }));
    return {
      kind: 'strip',
      model: path.resolve(o.model),
      inputs: path.resolve(o.inputs),
      threshold,
      falseRejection,
      mixes,
      clean: {
        clips: clips.length,
        entropy: {
          min: Math.min(...cleanEntropies),
          p05: quantile(cleanEntropies, 0.05),
          median: quantile(cleanEntropies, 0.5),
          max: Math.max(...cleanEntropies),
        },
      },
      clips: rows,
      flagged: rows.filter((r) => r.flagged).length,
    };
  } finally {
    for (const t of owned) t.dispose();
    model.dispose();
  }
}
