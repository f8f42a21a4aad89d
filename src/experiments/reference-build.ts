// `kwshield references build` as a library call: N clean reference models of a run's configuration (model,
// front-end, classes, data, recipe and epochs from its model.json), one run folder each at seeds seedBase..,
// the calibration `kwshield scan --references` needs. Resumable: a finished reference is skipped, an interrupted
// one continues from its checkpoint. Each reference is a train run (train-run.ts) on one of two shares:
//   full      the whole clean training split of the data (as `kwshield train` trains);
//   defender  the defender's clean share only: the class-stratified `cleanRatio` of the training split that the scan
//             and the defenses draw (seed `cleanSeed`), the data a defender with a little clean data has.
// The share is recorded in each reference's model.json (provenance.reference) and the scan reports it.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { disposeFeatureSet, type FeatureSet, stratifiedSample, subsetOf } from '../data/feature-set.ts';
import { type ModelManifest, readManifest } from '../models/checkpoint.ts';
import { disposeSplits, loadSplits } from './data-splits.ts';
import { type Recipe, type RecipeName, recipes } from './train.ts';
import { type TrainRunOptions, trainRun } from './train-run.ts';

export const referenceShares = ['full', 'defender'] as const;
export type ReferenceShareName = (typeof referenceShares)[number];

export class ReferenceBuildError extends Error {}

export interface ReferenceBuildOptions {
  /** the run folder whose configuration the references copy */
  like: string;
  count: number;
  /** the folder that receives one run folder per reference */
  out: string;
  /** default 'full' */
  share?: ReferenceShareName;
  /** the first reference's seed (default 100); the n-th has seedBase + n - 1 */
  seedBase?: number;
  /** default: the data `like` was trained on (its model.json) */
  data?: string;
  /** the defender's share of the training split (default 0.05) and its seed (default 0), as the scan draws them */
  cleanRatio?: number;
  cleanSeed?: number;
  cacheDir?: string | null;
  onStage?: (stage: string) => void;
  /** per reference, before its training (skipped: already finished) */
  onReference?: (index: number, total: number, run: string, status: 'training' | 'skipped') => void;
  /** per reference trained: its batch and epoch callbacks (the CLI's bars) */
  trainingProgress?: (epochs: number) => Pick<TrainRunOptions, 'onBatch' | 'onEpoch'>;
}

export interface ReferenceBuildResult {
  out: string;
  like: string;
  share: ReferenceShareName;
  model: string;
  frontEnd: string;
  epochs: number;
  references: { run: string; seed: number; status: 'trained' | 'skipped'; cleanAccuracy?: number }[];
  seconds: number;
}

/** What a reference records about itself in model.json (provenance.reference). */
interface ReferenceRecord {
  like: string;
  share: ReferenceShareName;
  cleanRatio?: number;
  cleanSeed?: number;
}

/** The training a reference copies from `like`: its model, front-end, classes, data, recipe and epochs. */
interface Plan {
  manifest: ModelManifest;
  data: string;
  recipe: RecipeName;
  epochs: number;
  overrides: Partial<Recipe>;
  runs: { run: string; seed: number; finished: boolean }[];
}

const runName = (manifest: ModelManifest, seed: number) => `${manifest.model}-${manifest.frontEnd}-ref-s${seed}`;

/** Every check before any training: the run, its data, the seeds, and the references already in `out`. */
function planReferences(o: ReferenceBuildOptions, share: ReferenceShareName, seedBase: number): Plan {
  if (!(Number.isInteger(o.count) && o.count >= 1)) throw new ReferenceBuildError(`--count must be a whole number >= 1, got ${o.count}`);
  let manifest: ModelManifest;
  try {
    manifest = readManifest(o.like);
  } catch (e) {
    throw new ReferenceBuildError(`--like ${o.like}: ${e instanceof Error ? e.message.replace(/: --model must be/, '; it must be') : e}`);
  }
  const p = manifest.provenance ?? {};
  const data = o.data ?? (typeof p.data === 'string' ? p.data : undefined);
  if (!data) throw new ReferenceBuildError(`${o.like}/model.json does not say which data it was trained on; give --data DIR`);
  if (!existsSync(data)) throw new ReferenceBuildError(`the data of ${o.like} (${data}) is not there; give --data DIR with the same classes`);
  const recipe = (p.recipe ?? 'fast') as RecipeName;
  if (!(recipe in recipes)) throw new ReferenceBuildError(`${o.like}/model.json names an unknown recipe '${recipe}'`);
  const epochs = typeof p.epochs === 'number' ? p.epochs : recipes[recipe].epochs;
  const ownSeed = typeof p.seed === 'number' ? p.seed : undefined;
  const seeds = Array.from({ length: o.count }, (_, i) => seedBase + i);
  if (ownSeed !== undefined && seeds.includes(ownSeed)) {
    throw new ReferenceBuildError(
      `the seeds ${seedBase}-${seedBase + o.count - 1} include ${o.like}'s own seed ${ownSeed}; choose --seed-base above ${ownSeed} (a reference must not share the model's initialisation)`,
    );
  }
  const runs = seeds.map((seed) => ({ run: path.join(o.out, runName(manifest, seed)), seed, finished: false }));
  for (const r of runs) {
    if (!existsSync(path.join(r.run, 'model.json'))) continue;
    const theirs = readManifest(r.run).provenance?.reference as ReferenceRecord | undefined;
    if (theirs?.share !== share) {
      throw new ReferenceBuildError(
        `${r.run} holds a reference trained on share '${theirs?.share ?? 'unrecorded'}', this call asks for '${share}'; give another --out (references of one scan share one training)`,
      );
    }
    r.finished = true;
  }
  const settings = typeof p.recipeSettings === 'object' && p.recipeSettings ? (p.recipeSettings as Partial<Recipe>) : {};
  return { manifest, data, recipe, epochs, overrides: settings, runs };
}

export async function buildReferences(o: ReferenceBuildOptions): Promise<ReferenceBuildResult> {
  const started = Date.now();
  const share = o.share ?? 'full';
  if (!(referenceShares as readonly string[]).includes(share)) throw new ReferenceBuildError(`--share must be full or defender, got '${share}'`);
  const cleanRatio = o.cleanRatio ?? 0.05;
  const cleanSeed = o.cleanSeed ?? 0;
  if (share === 'defender' && !(cleanRatio > 0 && cleanRatio <= 1)) throw new ReferenceBuildError(`--clean-ratio must be in (0, 1], got ${cleanRatio}`);
  const plan = planReferences(o, share, o.seedBase ?? 100);
  const { manifest } = plan;
  const results: ReferenceBuildResult['references'] = [];
  const toTrain = plan.runs.filter((r) => !r.finished);
  const record: ReferenceRecord = { like: path.resolve(o.like), share, ...(share === 'defender' ? { cleanRatio, cleanSeed } : {}) };
  const splits = toTrain.length ? await loadSplits(plan.data, { frontEnd: manifest.frontEnd, words: manifest.classes, cacheDir: o.cacheDir }) : undefined;
  let defenderTrain: FeatureSet | undefined;
  try {
    if (splits && splits.classes.join() !== manifest.classes.join()) {
      throw new ReferenceBuildError(`${plan.data} has the classes ${splits.classes.join(', ')}, ${o.like} ${manifest.classes.join(', ')}: they must match`);
    }
    if (splits && share === 'defender') defenderTrain = subsetOf(splits.train, stratifiedSample(splits.train.labelList, cleanRatio, cleanSeed));
    const train = defenderTrain ?? splits?.train;
    o.onStage?.(
      `${plan.runs.length} references of ${manifest.model} on ${manifest.frontEnd} (${plan.recipe}, ${plan.epochs} epochs), ${toTrain.length} to train on ${share === 'defender' ? `the defender's ${train?.size} clips` : `the full training split (${train?.size ?? 0} clips)`}`,
    );
    for (const [i, r] of plan.runs.entries()) {
      o.onReference?.(i + 1, plan.runs.length, r.run, r.finished ? 'skipped' : 'training');
      if (r.finished || !splits || !train) {
        results.push({ run: r.run, seed: r.seed, status: 'skipped' });
        continue;
      }
      const trained = await trainRun({
        data: plan.data,
        model: manifest.model,
        frontEnd: manifest.frontEnd,
        out: r.run,
        recipe: plan.recipe,
        epochs: plan.epochs,
        seed: r.seed,
        overrides: plan.overrides,
        resume: true,
        splits: { ...splits, train },
        provenance: { reference: record },
        ...o.trainingProgress?.(plan.epochs),
      });
      results.push({ run: r.run, seed: r.seed, status: 'trained', cleanAccuracy: trained.cleanAccuracy });
    }
  } finally {
    if (defenderTrain) disposeFeatureSet(defenderTrain);
    if (splits) disposeSplits(splits);
  }
  return {
    out: path.resolve(o.out),
    like: path.resolve(o.like),
    share,
    model: manifest.model,
    frontEnd: manifest.frontEnd,
    epochs: plan.epochs,
    references: results,
    seconds: (Date.now() - started) / 1000,
  };
}
