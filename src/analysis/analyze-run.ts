// `kwshield analyze` as a library call: the neuron analysis of a saved model (and, with `compare`, of a
// second one such as its purified version) on the defender's clean clips: per-neuron gradient norms,
// CLC/BLC zones and the 2-D embedding of the penultimate features, written as analysis.json + CSV files.
//
//   const r = await analyzeRun({ model: 'runs/resnet-badnets-s0', data: 'data/small-scd10',
//                                attackOf: 'runs/resnet-badnets-s0', compare: 'runs/resnet-badnets-gnft', out: 'analysis' });
//
// Without the attack run there is no trigger: no BLC, no zones and no triggered points (the file says so
// in `notes`). Both models are measured on the same clips.

import path from 'node:path';
import { getFrontEnd } from '../audio/frontends.ts';
import { disposeFeatureSet, type FeatureSet, subsetOf } from '../data/feature-set.ts';
import { triggeredFeatureSet } from '../data/features.ts';
import { loadModel, type ModelManifest } from '../models/checkpoint.ts';
import { classifierLayer } from '../models/neurons.ts';
import type { KwsModel, ModelSpec } from '../models/registry.ts';
import { manualSeed } from '../torch/index.ts';
import { type AnalysisFile, gradientSection, writeAnalysis } from './analysis-file.ts';
import { type EmbeddingMethod, embedClips } from './embedding.ts';
import { neuronGradients } from './gradients.ts';
import { checkLayers, defaultAnalysisLayers } from './neuron-layers.ts';
import { AnalysisInputError, type AttackOf, attackOf, cleanFeatures, defenderClips } from './run-data.ts';
import { balancedSubset } from './scan.ts';
import { lossChanges, type Zone, zoneCounts } from './zones.ts';

export interface AnalyzeRunOptions {
  model: string;
  data: string;
  out: string;
  /** the attack run the model came from: its trigger, target and poisoned clips (left out of D_c) */
  attackOf?: string;
  /** a second model analysed on the same clips, labelled 'after' */
  compare?: string;
  layers?: string[];
  /** the defender's share of the clean training clips (GN-FT paper: 5%) */
  cleanRatio?: number;
  seed?: number;
  embedding?: EmbeddingMethod;
  /** at most this many clips are embedded (clean + triggered; default 1000, exact t-SNE) */
  maxPoints?: number;
  /** t-SNE steps (default 500) */
  tsneIterations?: number;
  gradientBatchSize?: number;
  gradientMode?: 'eval' | 'train';
  label?: string;
  compareLabel?: string;
  cacheDir?: string;
  onStage?: (stage: string) => void;
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface AnalysisSummary {
  label: string;
  model: string;
  file: string;
  layers: string[];
  meanGradient: Record<string, number>;
  zones?: Record<Zone, number>;
  embedding: EmbeddingMethod;
  points: number;
  seconds: AnalysisFile['seconds'];
}

export interface AnalyzeRunResult {
  kind: 'analysis';
  out: string;
  files: string[];
  attack?: string;
  cleanClips: number;
  notes: string[];
  analyses: AnalysisSummary[];
  seconds: number;
}

interface Loaded {
  run: string;
  model: KwsModel;
  manifest: ModelManifest;
  spec: ModelSpec<object>;
}

function analyseOne(
  loaded: Loaded,
  label: string,
  layers: string[],
  clean: FeatureSet,
  triggered: FeatureSet | undefined,
  attack: AttackOf | undefined,
  embedSets: { clean: FeatureSet; triggered?: FeatureSet },
  o: AnalyzeRunOptions & { cleanRatio: number; seed: number },
  notes: string[],
): AnalysisFile {
  const { model, manifest, spec } = loaded;
  const stage = (s: string) => o.onStage?.(`[${label}] ${s}`);
  const mode = o.gradientMode ?? 'eval';
  const batchSize = o.gradientBatchSize ?? 16;
  let t = Date.now();
  stage(`per-neuron gradient norms on ${clean.size} clean clips (${layers.join(', ')})`);
  manualSeed(o.seed);
  const gradients = neuronGradients(model, layers, clean, { batchSize, mode });
  const gradientSeconds = (Date.now() - t) / 1000;
  let zones: ReturnType<typeof lossChanges> | undefined;
  let zoneSeconds: number | undefined;
  if (attack && triggered) {
    t = Date.now();
    stage(`CLC/BLC of ${gradients.reduce((n, g) => n + g.neurons.length, 0)} neurons on ${clean.size} clean clips and their triggered copies`);
    zones = lossChanges(
      model,
      layers,
      clean,
      { set: triggered, targetLabel: attack.plan.targetLabel },
      { onProgress: (d, n) => o.onProgress?.(`${label} zones`, d, n) },
    );
    zoneSeconds = (Date.now() - t) / 1000;
  }
  t = Date.now();
  const method = o.embedding ?? 'tsne';
  const classifier = classifierLayer(model, spec.neuronLayers(model));
  stage(`${method} of the penultimate features (the input of ${classifier}) of ${embedSets.clean.size + (embedSets.triggered?.size ?? 0)} clips`);
  const embedding = embedClips(model, classifier, embedSets.clean, embedSets.triggered, { method, seed: o.seed, tsne: { iterations: o.tsneIterations } });
  const embeddingSeconds = (Date.now() - t) / 1000;
  const zoneTolerance = 1e-6;
  return {
    format: 'kwshield-analysis',
    version: 1,
    model: path.resolve(loaded.run),
    ...(attack ? { attack: attack.attack } : {}),
    label,
    gradients: gradientSection(gradients, zones, { mode, batchSize }),
    ...(zones
      ? {
          zones: {
            layers,
            neurons: zones.neurons.map((n) => ({
              layer: n.layer,
              index: n.index,
              clc: n.clc,
              blc: n.blc as number,
              zone: n.zone as NonNullable<typeof n.zone>,
            })),
            counts: zoneCounts(zones.neurons.map((n) => n.zone as NonNullable<typeof n.zone>)),
            methods: zones.methods,
            baseline: { clean: zones.baseline.clean, backdoor: zones.baseline.backdoor as number },
            zeroTolerance: zoneTolerance,
          },
        }
      : {}),
    embedding: { ...embedding, features: classifier },
    modelFamily: manifest.model,
    classes: manifest.classes,
    frontEnd: manifest.frontEnd,
    data: {
      path: path.resolve(o.data),
      cleanRatio: o.cleanRatio,
      seed: o.seed,
      cleanClips: clean.size,
      ...(triggered && attack ? { triggeredClips: triggered.size, target: attack.plan.target, targetLabel: attack.plan.targetLabel } : {}),
    },
    notes,
    seconds: { gradients: gradientSeconds, ...(zoneSeconds !== undefined ? { zones: zoneSeconds } : {}), embedding: embeddingSeconds },
    created: new Date().toISOString(),
  };
}

function summaryOf(file: AnalysisFile, written: string): AnalysisSummary {
  return {
    label: file.label,
    model: file.model,
    file: written,
    layers: file.gradients.layers.map((l) => l.layer),
    meanGradient: Object.fromEntries(file.gradients.layers.map((l) => [l.layer, l.neurons.reduce((s, n) => s + n.mean, 0) / l.neurons.length])),
    ...(file.zones ? { zones: file.zones.counts } : {}),
    embedding: file.embedding.method,
    points: file.embedding.points.length,
    seconds: file.seconds,
  };
}

export async function analyzeRun(o: AnalyzeRunOptions): Promise<AnalyzeRunResult> {
  const started = Date.now();
  const cleanRatio = o.cleanRatio ?? 0.05;
  const seed = o.seed ?? 0;
  const opts = { ...o, cleanRatio, seed };
  const loaded: Loaded[] = [];
  const owned: FeatureSet[] = [];
  let attack: AttackOf | undefined;
  try {
    for (const run of [o.model, ...(o.compare ? [o.compare] : [])]) loaded.push({ run, ...loadModel(run) });
    const [main, other] = loaded;
    if (other) {
      const same = (a: ModelManifest, b: ModelManifest) => a.model === b.model && a.frontEnd === b.frontEnd && a.classes.join() === b.classes.join();
      if (!same(main.manifest, other.manifest)) {
        throw new AnalysisInputError(
          `--compare ${o.compare} is a ${other.manifest.model} on ${other.manifest.frontEnd} with classes ${other.manifest.classes.join(', ')}; --model ${o.model} is a ${main.manifest.model} on ${main.manifest.frontEnd} with ${main.manifest.classes.join(', ')}: compare models of one configuration`,
        );
      }
    }
    const neuronLayers = main.spec.neuronLayers(main.model);
    const layers = o.layers?.length ? checkLayers(main.model, neuronLayers, o.layers) : defaultAnalysisLayers(main.model, neuronLayers);
    if (o.attackOf) attack = attackOf(o.attackOf, main.manifest);
    const notes: string[] = [];
    if (!attack) notes.push('no --attack-of: without the trigger there is no BLC, no neuron zones and no triggered points in the embedding');
    const frontEnd = getFrontEnd(main.manifest.frontEnd);
    const { clips, classes } = await defenderClips(o.data, main.manifest, {
      run: o.model,
      cleanRatio,
      seed,
      exclude: attack ? new Set(attack.plan.indices) : undefined,
    });
    o.onStage?.(`defender's clean data: ${clips.length} clips (${(100 * cleanRatio).toFixed(1)}% of the training split, ${frontEnd.name})`);
    const clean = await cleanFeatures(clips, classes, frontEnd, o.cacheDir);
    owned.push(clean);
    let triggered: FeatureSet | undefined;
    if (attack) {
      triggered = await triggeredFeatureSet(clips, classes, frontEnd, attack.trigger, attack.artifact.seed, { cacheDir: o.cacheDir });
      owned.push(triggered);
    }
    // The embedding takes at most maxPoints clips, the same clean clips and their triggered copies.
    const maxPoints = o.maxPoints ?? 1000;
    const perSet = Math.floor(maxPoints / (triggered ? 2 : 1));
    let embedSets: { clean: FeatureSet; triggered?: FeatureSet } = { clean, triggered };
    if (clean.size > perSet) {
      const keep = balancedSubset(clean.labelList, perSet, seed);
      const c = subsetOf(clean, keep);
      owned.push(c);
      const t = triggered ? subsetOf(triggered, keep) : undefined;
      if (t) owned.push(t);
      embedSets = { clean: c, triggered: t };
      notes.push(`the embedding shows ${keep.length} of the ${clean.size} clean clips${t ? ' and their triggered copies' : ''} (at most ${maxPoints} points)`);
    }
    const files: string[] = [];
    const analyses: AnalysisSummary[] = [];
    loaded.forEach((l, k) => {
      const label = k === 0 ? (o.label ?? 'before') : (o.compareLabel ?? 'after');
      const file = analyseOne(l, label, layers, clean, triggered, attack, embedSets, opts, notes);
      const written = writeAnalysis(o.out, file, k === 0 ? '' : `-${label.replace(/[^\w.-]+/g, '_')}`);
      files.push(...written);
      analyses.push(summaryOf(file, written[0]));
    });
    return {
      kind: 'analysis',
      out: o.out,
      files,
      ...(attack ? { attack: attack.attack } : {}),
      cleanClips: clean.size,
      notes,
      analyses,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    for (const s of owned) disposeFeatureSet(s);
    attack?.dispose();
    for (const l of loaded) l.model.dispose();
  }
}
