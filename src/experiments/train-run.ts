// `kwshield train` as a library call: data folder in, run folder out (model.safetensors, model.json,
// metrics.json, log.jsonl, checkpoint/), resumable, never overwriting a finished run unless forced.
import { appendFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { type FrontEnd, getFrontEnd } from '../audio/frontends.ts';
import { saveModel, writeJsonAtomic } from '../models/checkpoint.ts';
import { buildModel, getModelSpec } from '../models/index.ts';
import { fitFeatureNorms } from '../nn/index.ts';
import { manualSeed } from '../torch/index.ts';
import { type DataSplits, disposeSplits, loadSplits } from './data-splits.ts';
import { evaluate } from './evaluate.ts';
import { type EpochRecord, type InputTimeAxis, type Recipe, type RecipeName, recipes, trainModel } from './train.ts';

export interface TrainRunOptions {
  data: string;
  model: string;
  out: string;
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
  /** loaded splits to reuse (the demo trains several models on one data set) */
  splits?: DataSplits;
}

export interface TrainRunResult {
  out: string;
  model: string;
  cleanAccuracy: number;
  perClassAccuracy: Record<string, number>;
  confusion: number[][];
  epochs: number;
  bestEpoch: number;
  seconds: number;
  samplesPerSecond: number;
}

export class RunFolderError extends Error {}

/** Refuses to clobber a finished run; clears a stale partial one unless resuming. */
export function prepareRunFolder(out: string, opts: { resume?: boolean; force?: boolean }): void {
  const finished = existsSync(path.join(out, 'model.json'));
  if (finished && !opts.force && !opts.resume) {
    throw new RunFolderError(`${out} already holds a finished run; choose another --out, or pass --force to replace it`);
  }
  if (opts.force && existsSync(out)) rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
}

/** Dim 1 of a front-end's output: waveform samples, or spectral frames spread over the clip. */
export function timeAxisOf(frontEnd: FrontEnd): InputTimeAxis {
  if (frontEnd.outputShape.length === 1) return { kind: 'waveform', stepsPerSecond: frontEnd.sampleRate };
  return { kind: 'features', stepsPerSecond: frontEnd.outputShape[0] / (frontEnd.inputSamples / frontEnd.sampleRate) };
}

export async function trainRun(opts: TrainRunOptions): Promise<TrainRunResult> {
  prepareRunFolder(opts.out, opts);
  const spec = getModelSpec(opts.model);
  opts.onStage?.(`features (${spec.frontEnd})`);
  const splits = opts.splits ?? (await loadSplits(opts.data, { frontEnd: spec.frontEnd, cacheDir: opts.cacheDir, onProgress: opts.onExtract }));
  try {
    const clipShape = splits.train.features.shape.slice(1);
    if (clipShape.join('x') !== spec.inputShape.join('x')) {
      throw new Error(`model ${spec.name} expects features ${spec.inputShape.join('x')} per clip, the data gives ${clipShape.join('x')}`);
    }
    const seed = opts.seed ?? 0;
    manualSeed(seed);
    const model = buildModel(spec.name, { classes: splits.classes.length });
    fitFeatureNorms(model, splits.train.features);
    const recipe = opts.recipe ?? 'fast';
    const epochs = opts.epochs ?? recipes[recipe].epochs;
    // The recipe as run: the named recipe, what this model needs of `fast`, then the caller's overrides.
    const settings: Recipe = { ...recipes[recipe], ...(recipe === 'fast' ? spec.fastRecipe : {}), ...opts.overrides, epochs };
    const logFile = path.join(opts.out, 'log.jsonl');
    opts.onStage?.(`training ${spec.name} (${recipe}, ${epochs} epochs)`);
    const record = await trainModel(model, splits.train, splits.validation, {
      recipe,
      overrides: settings,
      seed,
      checkpointDir: path.join(opts.out, 'checkpoint'),
      resume: opts.resume,
      timeBudgetSeconds: opts.timeBudgetSeconds,
      timeAxis: timeAxisOf(getFrontEnd(spec.frontEnd)),
      onBatch: opts.onBatch,
      onEpoch: (row) => {
        appendFileSync(logFile, `${JSON.stringify({ event: 'epoch', ...row })}\n`);
        opts.onEpoch?.(row, epochs);
      },
    });
    opts.onStage?.('evaluating on the test split');
    const test = evaluate(model, splits.test);
    const last = record.epochs[record.epochs.length - 1];
    const result: TrainRunResult = {
      out: opts.out,
      model: spec.name,
      cleanAccuracy: test.accuracy,
      perClassAccuracy: Object.fromEntries(splits.classes.map((c, i) => [c, test.perClassAccuracy[i]])),
      confusion: test.confusion,
      epochs: record.epochs.length,
      bestEpoch: record.bestEpoch,
      seconds: record.seconds,
      samplesPerSecond: last ? last.samplesPerSecond : 0,
    };
    saveModel(opts.out, model, {
      model: spec.name,
      config: { ...spec.defaults },
      frontEnd: spec.frontEnd,
      inputShape: spec.inputShape,
      classes: splits.classes,
      provenance: {
        data: path.resolve(opts.data),
        recipe,
        recipeSettings: settings,
        epochs,
        seed,
        created: new Date().toISOString(),
        bestEpoch: record.bestEpoch,
        stoppedEarly: record.stoppedEarly,
      },
    });
    writeJsonAtomic(path.join(opts.out, 'metrics.json'), { ...result, record });
    model.dispose();
    return result;
  } finally {
    if (!opts.splits) disposeSplits(splits);
  }
}
