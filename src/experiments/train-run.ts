// `kwshield train` as a library call: data folder in, run folder out (model.safetensors, model.json,
// metrics.json, log.jsonl, checkpoint/), resumable, never overwriting a finished run unless forced.
// fitModel is the part other runs (attacks, defenses' baselines) share: build a model for a front-end,
// train it with checkpoints in a run folder, and hand it back.
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { writeJsonAtomic } from '../data/atomic.ts';
import { timeAxisOf } from '../data/augment.ts';
import type { FeatureSet } from '../data/feature-set.ts';
import { saveModel } from '../models/checkpoint.ts';
import { buildModel, configForFrontEnd, getModelSpec, type KwsModel } from '../models/index.ts';
import { fitFeatureNorms } from '../nn/index.ts';
import { manualSeed } from '../torch/index.ts';
import { type DataSplits, disposeSplits, loadSplits } from './data-splits.ts';
import { evaluate } from './evaluate.ts';
import { prepareRunFolder } from './run-folder.ts';
import { type EpochRecord, type Recipe, type RecipeName, recipes, type TrainingRecord, trainModel } from './train.ts';

export interface TrainRunOptions {
  data: string;
  model: string;
  out: string;
  /** the front-end to train on (default: the model's own) */
  frontEnd?: string;
  recipe?: RecipeName;
  epochs?: number;
  seed?: number;
  resume?: boolean;
  force?: boolean;
  cacheDir?: string | null;
  timeBudgetSeconds?: number;
  /** recipe settings to change (lr, batchSize, clipNorm, ...) */
  overrides?: Partial<Recipe>;
  /** progress callbacks for the CLI */
  onStage?: (stage: string) => void;
  onExtract?: (split: string, done: number, total: number) => void;
  onBatch?: (batch: number, batches: number, epoch: number, loss: number) => void;
  onEpoch?: (row: EpochRecord, epochs: number) => void;
  /** loaded splits to reuse (the demo trains several models on one data set; references train on a share of one) */
  splits?: DataSplits;
  /** added to model.json's provenance (references build records its share) */
  provenance?: Record<string, unknown>;
}

export interface TrainRunResult {
  out: string;
  model: string;
  frontEnd: string;
  cleanAccuracy: number;
  perClassAccuracy: Record<string, number>;
  confusion: number[][];
  epochs: number;
  bestEpoch: number;
  seconds: number;
  samplesPerSecond: number;
}

export interface FitOptions {
  model: string;
  frontEnd: string;
  train: FeatureSet;
  validation: FeatureSet;
  /** run folder: checkpoints go to out/checkpoint, epoch lines to out/log.jsonl */
  out: string;
  recipe?: RecipeName;
  epochs?: number;
  seed?: number;
  resume?: boolean;
  timeBudgetSeconds?: number;
  overrides?: Partial<Recipe>;
  onStage?: (stage: string) => void;
  onBatch?: TrainRunOptions['onBatch'];
  onEpoch?: TrainRunOptions['onEpoch'];
}

export interface FittedModel {
  model: KwsModel;
  /** the model's configuration as built (saved in model.json) */
  config: Record<string, unknown>;
  inputShape: number[];
  record: TrainingRecord;
  /** the recipe as run */
  settings: Recipe;
  recipe: RecipeName;
  epochs: number;
  seed: number;
}

/** Builds `model` for `frontEnd`, fits its input norms on the training clips and trains it (resumable). */
export async function fitModel(o: FitOptions): Promise<FittedModel> {
  const spec = getModelSpec(o.model);
  const { config, frontEnd, inputShape } = configForFrontEnd(spec.name, o.frontEnd);
  const clipShape = o.train.features.shape.slice(1);
  if (clipShape.join('x') !== inputShape.join('x')) {
    throw new Error(
      `model ${spec.name} with front-end ${frontEnd.name} expects features ${inputShape.join('x')} per clip, the data gives ${clipShape.join('x')}`,
    );
  }
  const seed = o.seed ?? 0;
  manualSeed(seed);
  const model = buildModel(spec.name, { ...config, classes: o.train.classes.length });
  try {
    fitFeatureNorms(model, o.train.features);
    const recipe = o.recipe ?? 'fast';
    const epochs = o.epochs ?? recipes[recipe].epochs;
    // The recipe as run: the named recipe, what this model needs of `fast`, then the caller's overrides.
    const settings: Recipe = { ...recipes[recipe], ...(recipe === 'fast' ? spec.fastRecipe : {}), ...o.overrides, epochs };
    const logFile = path.join(o.out, 'log.jsonl');
    o.onStage?.(`training ${spec.name} on ${frontEnd.name} (${recipe}, ${epochs} epochs)`);
    const record = await trainModel(model, o.train, o.validation, {
      recipe,
      overrides: settings,
      seed,
      checkpointDir: path.join(o.out, 'checkpoint'),
      resume: o.resume,
      timeBudgetSeconds: o.timeBudgetSeconds,
      timeAxis: timeAxisOf(frontEnd),
      onBatch: o.onBatch,
      onEpoch: (row) => {
        appendFileSync(logFile, `${JSON.stringify({ event: 'epoch', ...row })}\n`);
        o.onEpoch?.(row, epochs);
      },
    });
    return { model, config, inputShape, record, settings, recipe, epochs, seed };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** model.safetensors + model.json of a fitted model; `provenance` adds to what the fit itself records. */
export function saveFitted(
  out: string,
  fitted: FittedModel,
  o: { model: string; frontEnd: string; classes: string[]; data: string; provenance?: Record<string, unknown> },
): void {
  saveModel(out, fitted.model, {
    model: o.model,
    config: fitted.config,
    frontEnd: o.frontEnd,
    inputShape: fitted.inputShape,
    classes: o.classes,
    provenance: {
      data: path.resolve(o.data),
      recipe: fitted.recipe,
      recipeSettings: fitted.settings,
      epochs: fitted.epochs,
      seed: fitted.seed,
      created: new Date().toISOString(),
      bestEpoch: fitted.record.bestEpoch,
      stoppedEarly: fitted.record.stoppedEarly,
      ...o.provenance,
    },
  });
}

export async function trainRun(opts: TrainRunOptions): Promise<TrainRunResult> {
  prepareRunFolder(opts.out, opts);
  const spec = getModelSpec(opts.model);
  const frontEndName = opts.frontEnd ?? spec.frontEnd;
  configForFrontEnd(spec.name, frontEndName); // a model/front-end mismatch fails before any clip is read
  opts.onStage?.(`features (${frontEndName})`);
  const splits = opts.splits ?? (await loadSplits(opts.data, { frontEnd: frontEndName, cacheDir: opts.cacheDir, onProgress: opts.onExtract }));
  try {
    const fitted = await fitModel({ ...opts, frontEnd: frontEndName, train: splits.train, validation: splits.validation });
    try {
      opts.onStage?.('evaluating on the test split');
      const test = evaluate(fitted.model, splits.test);
      const last = fitted.record.epochs[fitted.record.epochs.length - 1];
      const result: TrainRunResult = {
        out: opts.out,
        model: spec.name,
        frontEnd: frontEndName,
        cleanAccuracy: test.accuracy,
        perClassAccuracy: Object.fromEntries(splits.classes.map((c, i) => [c, test.perClassAccuracy[i]])),
        confusion: test.confusion,
        epochs: fitted.record.epochs.length,
        bestEpoch: fitted.record.bestEpoch,
        seconds: fitted.record.seconds,
        samplesPerSecond: last ? last.samplesPerSecond : 0,
      };
      saveFitted(opts.out, fitted, { model: spec.name, frontEnd: frontEndName, classes: splits.classes, data: opts.data, provenance: opts.provenance });
      writeJsonAtomic(path.join(opts.out, 'metrics.json'), { ...result, record: fitted.record });
      return result;
    } finally {
      fitted.model.dispose();
    }
  } finally {
    if (!opts.splits) disposeSplits(splits);
  }
}
