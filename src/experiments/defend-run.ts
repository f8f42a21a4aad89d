// `kwshield defend` as a library call: purify a saved model with a defense and the defender's clean
// data, and (when the attack run is given) measure CA, ASR, RA before and after, and DER.
//
// The defender's data is read here and only here: a class-stratified `cleanRatio` of the clean training
// split (disjoint from the poisoned clips when the attack run is known), as features. The defense gets
// that FeatureSet and nothing else; the test split is read only for the before/after measurement, after
// the defense has finished, and only when --attack-of asks for it.
import path from 'node:path';
import type { BackdoorMetrics } from '../analysis/metrics.ts';
import { disposeArtifact, getAttack, loadArtifact, loadPlan } from '../attacks/index.ts';
import { getFrontEnd } from '../audio/frontends.ts';
import { writeJsonAtomic } from '../data/atomic.ts';
import { timeAxisOf } from '../data/augment.ts';
import { loadCleanData } from '../data/defender-clips.ts';
import { disposeFeatureSet, type FeatureSet, makeFeatureSet } from '../data/feature-set.ts';
import { featureSetOf, triggeredFeatureSet } from '../data/features.ts';
import { readSpeechCommands } from '../data/speech-commands.ts';
import { getDefense } from '../defenses/index.ts';
import type { DefenseProgress, DefenseReport } from '../defenses/types.ts';
import { loadModel, type ModelManifest, saveModel } from '../models/checkpoint.ts';
import type { KwsModel } from '../models/index.ts';
import { resolveOptions } from '../options/options.ts';
import { manualSeed, zeros } from '../torch/index.ts';
import { derBetween, evaluateBackdoor } from './evaluate.ts';
import { featureCacheOf, prepareRunFolder } from './run-folder.ts';

export type DefenseRecipe = 'default' | 'paper';

export interface DefendRunOptions {
  /** the run folder of the model to purify */
  model: string;
  data: string;
  defense: string;
  out: string;
  /** share of the clean training clips the defender has (GN-FT paper: 0.05) */
  cleanRatio?: number;
  recipe?: DefenseRecipe;
  /** defense options over the recipe's */
  options?: Record<string, unknown>;
  /** the attack run the model came from: excludes its poisoned clips, and measures before/after */
  attackOf?: string;
  seed?: number;
  cacheDir?: string | null;
  resume?: boolean;
  force?: boolean;
  onStage?: (stage: string) => void;
  onExtract?: (split: string, done: number, total: number) => void;
  progress?: DefenseProgress;
}

export interface DefendRunResult {
  kind: 'defense';
  out: string;
  defense: string;
  recipe: DefenseRecipe;
  options: DefenseReport['options'];
  model: string;
  parent: string;
  frontEnd: string;
  attack?: string;
  cleanRatio: number;
  cleanClips: number;
  seed: number;
  report: DefenseReport;
  before?: BackdoorMetrics;
  after?: BackdoorMetrics;
  der?: number;
  seconds: { total: number; defense: number };
}

export class DefendRunError extends Error {}

/** CA on the clean test split, ASR and RA on its copy triggered by the attack run's test trigger. */
async function measure(data: string, manifest: ModelManifest, attackRun: string, cacheDir: string | undefined) {
  const artifact = loadArtifact(attackRun);
  try {
    const plan = loadPlan(attackRun);
    const attack = getAttack(artifact.attack);
    const frontEnd = getFrontEnd(manifest.frontEnd);
    const problem = attack.frontEndProblem(frontEnd);
    if (problem) throw new DefendRunError(`--attack-of ${attackRun}: ${problem}`);
    const dataset = await readSpeechCommands(data, { words: manifest.classes });
    const test = dataset.entries.filter((e) => e.split === 'test');
    const clean = await featureSetOf(test, dataset.words, frontEnd, { cacheDir });
    const triggered = await triggeredFeatureSet(test, dataset.words, frontEnd, attack.trigger(artifact, 'test', frontEnd), artifact.seed, { cacheDir });
    return {
      attack: attack.name,
      targetLabel: plan.targetLabel,
      metrics: (m: KwsModel) => evaluateBackdoor(m, clean, triggered, plan.targetLabel),
      dispose: () => {
        disposeFeatureSet(clean);
        disposeFeatureSet(triggered);
      },
    };
  } finally {
    disposeArtifact(artifact);
  }
}

function now(): number {
  return Date.now() / 1000;
}

export async function defendRun(o: DefendRunOptions): Promise<DefendRunResult> {
  const started = now();
  const defense = getDefense(o.defense);
  const recipe = o.recipe ?? 'default';
  if (!Object.hasOwn(defense.recipes, recipe)) throw new DefendRunError(`--recipe must be one of ${Object.keys(defense.recipes).join(', ')}, got '${recipe}'`);
  const cleanRatio = o.cleanRatio ?? 0.05;
  const seed = o.seed ?? 0;
  if (path.resolve(o.model) === path.resolve(o.out)) throw new DefendRunError('--out must be a new folder, not the model being purified');
  const { model, manifest, spec } = loadModel(o.model);
  const featureCache = featureCacheOf(o.cacheDir);
  let clean: FeatureSet | undefined;
  let probe: Awaited<ReturnType<typeof measure>> | undefined;
  try {
    const info = { name: spec.name, neuronLayers: spec.neuronLayers(model), timeAxis: timeAxisOf(getFrontEnd(manifest.frontEnd)) };
    const problem = defense.modelProblem?.(model, info, { ...defense.recipes[recipe], ...(o.options ?? {}) });
    if (problem) throw new DefendRunError(problem);
    // Bad options fail here, before any clip is read.
    const options = resolveOptions(defense.name, defense.options, { ...defense.recipes[recipe], ...(o.options ?? {}) });
    prepareRunFolder(o.out, { resume: o.resume, force: o.force });
    // Poisoned clips are not the defender's clean data: leave them out when the attack run says which.
    const exclude = o.attackOf ? new Set(loadPlan(o.attackOf).indices) : undefined;
    o.onStage?.(`defender's clean data: ${(100 * cleanRatio).toFixed(1)}% of the training split (${manifest.frontEnd})`);
    clean = defense.needsData
      ? await loadCleanData(o.data, manifest, { cleanRatio, seed, exclude, cacheDir: featureCache, onProgress: (d, t) => o.onExtract?.('clean', d, t) })
      : undefined;
    let before: BackdoorMetrics | undefined;
    if (o.attackOf) {
      o.onStage?.('measuring the model before the defense');
      probe = await measure(o.data, manifest, o.attackOf, featureCache);
      before = probe.metrics(model);
    }
    o.onStage?.(`running ${defense.name} (${recipe} recipe)`);
    manualSeed(seed);
    const defenseStart = now();
    // A data-free defense (CLP) gets an empty clean set: no clip at all.
    clean ??= makeFeatureSet(zeros([0, ...manifest.inputShape]), [], manifest.classes);
    // The options were resolved above, once: the defense gets them as they are.
    const report = await defense.purify(model, clean, {
      options,
      seed,
      model: info,
      progress: o.progress,
      checkpointDir: path.join(o.out, 'checkpoint'),
      resume: o.resume,
    });
    const defenseSeconds = now() - defenseStart;
    const after = probe?.metrics(model);
    const result: DefendRunResult = {
      kind: 'defense',
      out: o.out,
      defense: defense.name,
      recipe,
      options: report.options,
      model: manifest.model,
      parent: path.resolve(o.model),
      frontEnd: manifest.frontEnd,
      ...(probe ? { attack: probe.attack } : {}),
      cleanRatio,
      cleanClips: report.cleanClips,
      seed,
      report,
      ...(before && after ? { before, after, der: derBetween(before, after) } : {}),
      seconds: { total: now() - started, defense: defenseSeconds },
    };
    saveModel(o.out, model, {
      model: manifest.model,
      config: manifest.config,
      frontEnd: manifest.frontEnd,
      inputShape: manifest.inputShape,
      classes: manifest.classes,
      // a TorchScript model is written back as an archive (model.pt: its code, the purified tensors)
      ...(manifest.torchscript ? { torchscript: manifest.torchscript } : {}),
      provenance: {
        ...(manifest.provenance ?? {}),
        purifiedFrom: path.resolve(o.model),
        defense: defense.name,
        defenseRecipe: recipe,
        defenseOptions: report.options,
        cleanRatio,
        cleanClips: report.cleanClips,
        defenseSeed: seed,
        created: new Date().toISOString(),
      },
    });
    writeJsonAtomic(path.join(o.out, 'metrics.json'), { ...result, created: new Date().toISOString() });
    return result;
  } finally {
    if (clean) disposeFeatureSet(clean);
    probe?.dispose();
    model.dispose();
  }
}
