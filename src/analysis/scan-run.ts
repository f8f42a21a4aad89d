// `kwshield scan` as library calls, from a run folder and a data folder only (no attack run):
//   scanRun          without references: scores only, verdict 'uncalibrated' (scan.ts: Neural Cleanse's anomaly
//                    index and the gradient signature, neither calibrated)
//   referenceScanRun against clean references of the model's configuration: the probe bank's verdict, 'found' or
//                    'not-found', with its p-value and false-alarm bound (probe-bank.ts; the families: the transform
//                    probe, transform-probe.ts; additive sounds, additive-probe.ts; the classifier-row subspace,
//                    subspace-probe.ts)
//   scanInputs       which WAV clips of a folder carry a trigger? Two detectors side by side, each flagged beyond a
//                    threshold set on the defender's clean clips: STRIP entropy (strip.ts, additive triggers) and
//                    label stability (stability.ts, whole-clip transforms)
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { getFrontEnd } from '../audio/frontends.ts';
import { disposeFeatureSet } from '../data/feature-set.ts';
import { loadModel, type ModelManifest, readManifest } from '../models/checkpoint.ts';
import type { Tensor } from '../torch/index.ts';
import { additiveFamily } from './additive-probe.ts';
import { checkLayers } from './neuron-layers.ts';
import { type BankVerdict, type ProbeClips, type ProbeFamily, runProbeBank } from './probe-bank.ts';
import { AnalysisInputError, cleanFeatures, defenderClips, waveformsOf } from './run-data.ts';
import { type ScanResult, scanModel } from './scan.ts';
import { clipStabilities, stabilityPerturbations, stabilityThreshold } from './stability.ts';
import { quantile, stripEntropies, stripThreshold } from './strip.ts';
import { subspaceFamily } from './subspace-probe.ts';
import { transformFamily } from './transform-probe.ts';

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
  cacheDir?: string;
  onStage?: (stage: string) => void;
  onProgress?: (done: number, total: number) => void;
}

export interface ScanRunResult extends ScanResult {
  kind: 'scan';
  /** without clean references nothing here is calibrated: scores only */
  verdict: 'uncalibrated';
  statement: string;
  model: string;
  modelFamily: string;
  classes: string[];
  cleanRatio: number;
  seed: number;
}

/** What an uncalibrated scan says instead of a verdict, and how to get one. */
export function uncalibratedStatement(run: string): string {
  return `uncalibrated: no clean references, so no verdict; the scores below are not calibrated (for a verdict: kwshield references build --like ${run} --count 6 --out REFS, then scan --references REFS)`;
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
        neuralCleanse: { ...(o.steps ? { steps: o.steps } : {}), ...(o.batchSize ? { batchSize: o.batchSize } : {}) },
        onStage: o.onStage,
        onProgress: o.onProgress,
      });
      return {
        kind: 'scan',
        verdict: 'uncalibrated',
        statement: uncalibratedStatement(o.model),
        model: path.resolve(o.model),
        modelFamily: manifest.model,
        classes: manifest.classes,
        cleanRatio,
        seed,
        ...result,
      };
    } finally {
      disposeFeatureSet(clean);
    }
  } finally {
    model.dispose();
  }
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

/** Refuses a reference that is the subject itself, an attack run, or of another configuration, naming what differs. */
function checkReference(subject: { run: string; manifest: ModelManifest }, run: string, manifest: ModelManifest): void {
  if (path.resolve(run) === path.resolve(subject.run)) {
    throw new AnalysisInputError(`--references: ${run} is the model being scanned; a model cannot be its own reference`);
  }
  if (manifest.provenance?.attack) {
    throw new AnalysisInputError(`--references: ${run} is a backdoored run (attack ${manifest.provenance.attack}); references must be clean models`);
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
      `--references: ${run} differs from the scanned model in ${differs.map(([what, a, b]) => `${what} (${a}, the model has ${b})`).join(' and ')}; references must be clean models of the same family, front-end and classes (train them with kwshield references build --like ${subject.run} --count N --out DIR)`,
    );
  }
}

/** The subject's manifest after checking every reference against it; at least `minimum` references. */
export function checkReferences(model: string, references: readonly string[], minimum = 3): ModelManifest {
  if (references.length < minimum) {
    throw new AnalysisInputError(
      `--references: ${references.length} given, the scan needs at least ${minimum} clean models (n of them bound the false alarms at 1 / (n + 1) per probe family)`,
    );
  }
  const manifest = readManifest(model);
  for (const run of references) checkReference({ run: model, manifest }, run, readManifest(run));
  return manifest;
}

/** What the references were trained on, as `kwshield references build` records it. */
export type ReferenceShare = 'full' | 'defender' | 'unrecorded';

export function referenceShareOf(manifest: ModelManifest): ReferenceShare {
  const share = (manifest.provenance?.reference as { share?: unknown } | undefined)?.share;
  return share === 'full' || share === 'defender' ? share : 'unrecorded';
}

/** The references' shares in words, e.g. "trained on the full clean training split". */
export function describeShares(shares: readonly ReferenceShare[]): string {
  const words: Record<ReferenceShare, string> = {
    full: 'trained on the full clean training split',
    defender: "trained on the defender's clean share only",
    unrecorded: 'training data not recorded (not made by kwshield references build)',
  };
  const distinct = [...new Set(shares)];
  return distinct.map((s) => (distinct.length > 1 ? `${shares.filter((x) => x === s).length} ${words[s]}` : words[s])).join('; ');
}

export interface ReferenceScanRunOptions {
  model: string;
  /** run folders of clean models of the same family, front-end and classes (at least 3) */
  references: string[];
  data: string;
  cleanRatio?: number;
  seed?: number;
  onStage?: (stage: string) => void;
}

export interface ReferenceScanRunResult extends Omit<BankVerdict, 'target'> {
  kind: 'scan';
  /** the one-line verdict as the text report prints it */
  statement: string;
  /** the backdoor's target when found, else null (each family still names the class its score points at) */
  target: string | null;
  model: string;
  modelFamily: string;
  frontEnd: string;
  classes: string[];
  referenceRuns: string[];
  /** what each reference was trained on (kwshield references build --share) */
  referenceShares: ReferenceShare[];
  cleanRatio: number;
  seed: number;
  clips: number;
  seconds: number;
}

/**
 * The default probe bank, one family per kind of trigger: whole-clip transforms (transform-probe.ts), additive sounds
 * (additive-probe.ts), feature-domain patches (subspace-probe.ts; chosen over the reversed trigger's transfer gap,
 * measured/scan/fresh-zoo-PLAN.md).
 */
export const defaultProbeFamilies = (seed: number): ProbeFamily[] => [
  transformFamily(seed) as ProbeFamily,
  additiveFamily(seed) as ProbeFamily,
  subspaceFamily() as ProbeFamily,
];

/** The verdict in one line: what was found or not, by which probes, against what, and the false-alarm bound. */
export function verdictStatement(v: BankVerdict, shares: readonly ReferenceShare[]): string {
  const against = `against ${v.references} clean references (${describeShares(shares)})`;
  const skipped = v.skipped.length ? `; not probed: ${v.skipped.map((f) => `${f.family} (${f.reason})`).join(', ')}` : '';
  const bound = `false alarms at most ${v.falseAlarmBound.toPrecision(2)} (conformal: 1/${v.references + 1} per probe family, Bonferroni over ${v.families.length})${skipped}`;
  if (v.verdict === 'found') {
    return `backdoor found (target '${v.target}', by probe ${v.by}, p = ${v.pValue.toPrecision(2)}) ${against}; ${bound}`;
  }
  return `no backdoor found by these probes (${v.families.map((f) => `${f.family}: ${f.probes}`).join('; ')}; p = ${v.pValue.toPrecision(2)}) ${against}; ${bound}; a backdoor these probes do not reach is not ruled out`;
}

/**
 * The defender's clean clips (a class-stratified share of the clean training split) as the probe families receive
 * them: waveforms through the model's front-end. The same for every model of one configuration (they do not depend
 * on the scanned run). The caller disposes `clips.waves`.
 */
export async function defenderProbeClips(
  data: string,
  manifest: ModelManifest,
  o: { run: string; cleanRatio: number; seed: number },
): Promise<{ clips: ProbeClips; count: number }> {
  const frontEnd = getFrontEnd(manifest.frontEnd);
  const { clips, classes } = await defenderClips(data, manifest, o);
  const waves = await waveformsOf(clips, frontEnd);
  return {
    clips: { waves, labels: clips.map((c) => c.label), classes, sampleRate: frontEnd.sampleRate, toModelInput: (w) => frontEnd.apply(w) },
    count: clips.length,
  };
}

/**
 * The model against clean references of its configuration: the defender's clips (a class-stratified share of the
 * clean training split) through every probe family, into the model and into each reference; one conformal verdict.
 */
export async function referenceScanRun(o: ReferenceScanRunOptions): Promise<ReferenceScanRunResult> {
  const started = Date.now();
  const cleanRatio = o.cleanRatio ?? 0.05;
  const seed = o.seed ?? 0;
  const subjectManifest = checkReferences(o.model, o.references);
  const shares = o.references.map((r) => referenceShareOf(readManifest(r)));
  const { clips, count } = await defenderProbeClips(o.data, subjectManifest, { run: o.model, cleanRatio, seed });
  const families = defaultProbeFamilies(seed);
  o.onStage?.(`defender's clean data: ${count} clips; probes ${families.map((f) => f.name).join(', ')} into the model and ${o.references.length} references`);
  const { model } = loadModel(o.model);
  try {
    const verdict = runProbeBank(
      families,
      model,
      o.references.map((run) => () => loadModel(run).model),
      clips,
      (done, total) => o.onStage?.(`reference ${done}/${total} probed`),
    );
    return {
      kind: 'scan',
      statement: verdictStatement(verdict, shares),
      ...verdict,
      target: verdict.verdict === 'found' ? verdict.target : null,
      model: path.resolve(o.model),
      modelFamily: subjectManifest.model,
      frontEnd: subjectManifest.frontEnd,
      classes: [...clips.classes],
      referenceRuns: o.references.map((r) => path.resolve(r)),
      referenceShares: shares,
      cleanRatio,
      seed,
      clips: count,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    model.dispose();
    clips.waves.dispose();
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
  /** share of clean clips allowed to be flagged, by each detector: its threshold's percentile (default 0.01, STRIP's FRR) */
  falseRejection?: number;
  onStage?: (stage: string) => void;
}

export interface ScanInputsResult {
  kind: 'inputs';
  model: string;
  inputs: string;
  /** the share of the defender's clean clips each detector may flag: it sets both thresholds */
  falseRejection: number;
  /** STRIP: flagged below the threshold (low entropy of blends) */
  strip: { threshold: number; mixes: number; clean: { min: number; p05: number; median: number; max: number } };
  /** label stability: flagged above the threshold */
  stability: {
    threshold: number;
    perturbations: { breaking: string[]; preserving: string[] };
    clean: { min: number; median: number; p99: number; max: number };
  };
  cleanClips: number;
  clips: {
    file: string;
    predicted: string;
    strip: { entropy: number; flagged: boolean };
    stability: { score: number; breakingKept: number; preservingKept: number; flagged: boolean };
  }[];
  flagged: { strip: number; stability: number };
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
 * Two per-clip detectors over WAV clips, each thresholded on the defender's clean clips at the same false-alarm
 * share: STRIP (blends of waveforms, what a microphone would pick up, through the model's front-end) and label
 * stability (stability.ts). A feature-domain trigger (Audio BadNets on MFCC) cannot be in a WAV file at all; the
 * waveform attacks can.
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
    const perturbations = stabilityPerturbations(seed);
    o.onStage?.(`label stability under ${perturbations.length} perturbations: ${clips.length} clean clips, then the inputs`);
    const stabilityOptions = { sampleRate: frontEnd.sampleRate, toModelInput, perturbations };
    const cleanStability = clipStabilities(model, pool, stabilityOptions).map((c) => c.score);
    const stabilityCut = stabilityThreshold(cleanStability, falseRejection);
    const stability = clipStabilities(model, inputs, stabilityOptions);
    const rows = files.map((file, i) => ({
      file: path.relative(o.inputs, file),
      predicted: manifest.classes[stability[i].predicted],
      strip: { entropy: entropies[i], flagged: entropies[i] < threshold },
      stability: {
        score: stability[i].score,
        breakingKept: stability[i].breakingKept,
        preservingKept: stability[i].preservingKept,
        flagged: stability[i].score > stabilityCut,
      },
    }));
    const namesOf = (kind: 'breaking' | 'preserving') => perturbations.filter((p) => p.kind === kind).map((p) => p.name);
    return {
      kind: 'inputs',
      model: path.resolve(o.model),
      inputs: path.resolve(o.inputs),
      falseRejection,
      strip: {
        threshold,
        mixes,
        clean: {
          min: Math.min(...cleanEntropies),
          p05: quantile(cleanEntropies, 0.05),
          median: quantile(cleanEntropies, 0.5),
          max: Math.max(...cleanEntropies),
        },
      },
      stability: {
        threshold: stabilityCut,
        perturbations: { breaking: namesOf('breaking'), preserving: namesOf('preserving') },
        clean: {
          min: Math.min(...cleanStability),
          median: quantile(cleanStability, 0.5),
          p99: quantile(cleanStability, 0.99),
          max: Math.max(...cleanStability),
        },
      },
      cleanClips: clips.length,
      clips: rows,
      flagged: { strip: rows.filter((r) => r.strip.flagged).length, stability: rows.filter((r) => r.stability.flagged).length },
    };
  } finally {
    for (const t of owned) t.dispose();
    model.dispose();
  }
}
