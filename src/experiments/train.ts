// Training with recipes, early stopping, per-epoch checkpoints and resume (specs/models.md Training).
// A run killed at any moment loses at most the epoch in progress: every epoch ends with an atomic
// checkpoint of weights, optimizer state and the record, and shuffles are seeded per epoch so a
// resumed run continues exactly as an uninterrupted one would.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { writeJsonAtomic } from '../data/atomic.ts';
import { type Augment, augmentBatch, batchShift, defaultTimeAxis, type InputTimeAxis, lightAugment } from '../data/augment.ts';
import { batchIndices, type FeatureSet, gatherBatch } from '../data/feature-set.ts';
import type { KwsModel } from '../models/registry.ts';
import { adam, adamW, applySchedule, clipGradNorm, constantSchedule, cosineSchedule, type Optimizer, type Schedule } from '../nn/index.ts';
import { argmax, backward, crossEntropy, dispose, eq, keep, manualSeed, noGrad, type Tensor, tidy } from '../torch/index.ts';
import { loadSafetensors, saveSafetensors } from '../torch/io/safetensors.ts';
import { evaluate } from './evaluate.ts';

export type RecipeName = 'fast' | 'paper';

export interface Recipe {
  optimizer: 'adam' | 'adamw';
  lr: number;
  weightDecay: number;
  schedule: 'cosine' | 'constant';
  epochs: number;
  batchSize: number;
  /** early stopping: epochs without improvement of `monitor` */
  patience: number;
  monitor: 'val_accuracy' | 'val_loss';
  /** clip the global gradient norm to this value (0: no clipping) */
  clipNorm: number;
  /** linear learning-rate warm-up over this many epochs (per batch), then the schedule */
  warmupEpochs: number;
  /** light augmentation of training batches (see Augment); null: none */
  augment: Augment | null;
}

export const recipes: Record<RecipeName, Recipe> = {
  // specs/models.md: AdamW 1e-3, wd 1e-4, cosine, 30 epochs, batch 128, light augmentation, early stop on val accuracy.
  fast: {
    optimizer: 'adamw',
    lr: 1e-3,
    weightDecay: 1e-4,
    schedule: 'cosine',
    epochs: 30,
    batchSize: 128,
    patience: 8,
    monitor: 'val_accuracy',
    // Post-norm transformers (KWT) do not train from a cold 1e-3; the KWT paper warms up for 10 of 140 epochs.
    warmupEpochs: 1,
    clipNorm: 0,
    // 50 ms either way (5 MFCC frames); noise 20 dB under the clip on waveforms.
    augment: lightAugment,
  },
  // GN-FT paper protocol (attacks.md section 0): Adam 1e-4, batch 256, up to 300 epochs, patience 20 on loss.
  paper: {
    optimizer: 'adam',
    lr: 1e-4,
    weightDecay: 0,
    schedule: 'constant',
    epochs: 300,
    batchSize: 256,
    patience: 20,
    monitor: 'val_loss',
    warmupEpochs: 0,
    clipNorm: 0,
    augment: null,
  },
};

export interface EpochRecord {
  epoch: number;
  lr: number;
  trainLoss: number;
  trainAccuracy: number;
  valLoss: number;
  valAccuracy: number;
  seconds: number;
  samplesPerSecond: number;
}

export interface TrainingRecord {
  recipe: RecipeName;
  seed: number;
  epochs: EpochRecord[];
  bestEpoch: number;
  stoppedEarly: boolean;
  seconds: number;
}

export { type Augment, augmentBatch, defaultTimeAxis, type InputTimeAxis } from '../data/augment.ts';

export interface TrainOptions {
  recipe?: RecipeName;
  /** overrides of the recipe (epochs, lr, batchSize, ...) */
  overrides?: Partial<Recipe>;
  seed?: number;
  /** where checkpoints go; without it nothing is written and resume is impossible */
  checkpointDir?: string;
  /** continue from checkpointDir's last checkpoint if there is one */
  resume?: boolean;
  /** stop starting new epochs after this many seconds */
  timeBudgetSeconds?: number;
  /** called after every batch: (batch index, batches per epoch, epoch, running loss) */
  onBatch?: (batch: number, batches: number, epoch: number, loss: number) => void;
  onEpoch?: (record: EpochRecord) => void;
  /** checked between batches; return true to stop (the last finished epoch stays checkpointed) */
  shouldStop?: () => boolean;
  /** what dim 1 of the inputs is (default: MFCC frames at 100/s) */
  timeAxis?: InputTimeAxis;
}

interface CheckpointState {
  record: TrainingRecord;
  bestMetric: number;
  stale: number;
}

const files = (dir: string) => ({
  weights: path.join(dir, 'last.safetensors'),
  optimizer: path.join(dir, 'optimizer.safetensors'),
  best: path.join(dir, 'best.safetensors'),
  state: path.join(dir, 'state.json'),
});

function makeOptimizer(model: KwsModel, recipe: Recipe): Optimizer {
  const params = model.parameters();
  return recipe.optimizer === 'adamw'
    ? adamW(params, { lr: recipe.lr, weightDecay: recipe.weightDecay })
    : adam(params, { lr: recipe.lr, weightDecay: recipe.weightDecay });
}

function makeSchedule(recipe: Recipe): Schedule {
  return recipe.schedule === 'cosine' ? cosineSchedule(recipe.lr, recipe.epochs) : constantSchedule(recipe.lr);
}

function improved(monitor: Recipe['monitor'], value: number, best: number): boolean {
  return monitor === 'val_accuracy' ? value > best : value < best;
}

/**
 * Trains `model` in place on `train`, monitoring `validation`; at the end the model holds the best
 * epoch's weights. Async only to let signals and progress output through between batches.
 */
export async function trainModel(model: KwsModel, train: FeatureSet, validation: FeatureSet, opts: TrainOptions = {}): Promise<TrainingRecord> {
  const recipeName = opts.recipe ?? 'fast';
  const recipe: Recipe = { ...recipes[recipeName], ...opts.overrides };
  const seed = opts.seed ?? 0;
  const timeAxis = opts.timeAxis ?? defaultTimeAxis;
  const optimizer = makeOptimizer(model, recipe);
  const schedule = makeSchedule(recipe);
  const started = Date.now();
  let state: CheckpointState = {
    record: { recipe: recipeName, seed, epochs: [], bestEpoch: -1, stoppedEarly: false, seconds: 0 },
    bestMetric: recipe.monitor === 'val_accuracy' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY,
    stale: 0,
  };
  const paths = opts.checkpointDir ? files(opts.checkpointDir) : null;
  if (paths && opts.checkpointDir) mkdirSync(opts.checkpointDir, { recursive: true });
  if (paths && opts.resume && existsSync(paths.state)) {
    state = JSON.parse(readFileSync(paths.state, 'utf8')) as CheckpointState;
    tidy(() => {
      model.loadStateDict(loadSafetensors(paths.weights).tensors);
      optimizer.loadStateDict(loadSafetensors(paths.optimizer).tensors);
    });
  }
  const bestInMemory = new Map<string, Tensor>();
  model.train();
  const firstEpoch = state.record.epochs.length;
  for (let epoch = firstEpoch; epoch < recipe.epochs; epoch++) {
    if (opts.timeBudgetSeconds && (Date.now() - started) / 1000 > opts.timeBudgetSeconds) break;
    const lr = applySchedule(optimizer, schedule, epoch);
    const epochStart = Date.now();
    // Per-epoch seeds: a resumed run draws the same shuffles and noise as an uninterrupted one.
    manualSeed(seed * 1000 + epoch);
    const batches = batchIndices(train.size, recipe.batchSize, { shuffle: true, seed: seed * 1000 + epoch });
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    for (let b = 0; b < batches.length; b++) {
      if (opts.shouldStop?.()) {
        optimizer.dispose();
        return finish(state.record, started);
      }
      if (epoch < recipe.warmupEpochs) optimizer.lr = lr * Math.min(1, (epoch + (b + 1) / batches.length) / recipe.warmupEpochs);
      else optimizer.lr = lr;
      optimizer.zeroGrad();
      tidy(() => {
        const { x, y } = gatherBatch(train, batches[b]);
        const input = recipe.augment ? augmentBatch(x, recipe.augment, timeAxis, batchShift(recipe.augment, timeAxis, epoch, b)) : x;
        const logits = model.forward(input);
        const loss = crossEntropy(logits, y);
        backward(loss);
        lossSum += loss.item() * batches[b].length;
        correct += eq(argmax(logits, 1), y).sum().item();
        seen += batches[b].length;
      });
      if (recipe.clipNorm > 0) clipGradNorm(optimizer.params, recipe.clipNorm);
      optimizer.step();
      opts.onBatch?.(b + 1, batches.length, epoch, lossSum / seen);
      if (b % 4 === 3) await new Promise((resolve) => setImmediate(resolve));
    }
    const val = evaluate(model, validation);
    const seconds = (Date.now() - epochStart) / 1000;
    const row: EpochRecord = {
      epoch,
      lr,
      trainLoss: lossSum / seen,
      trainAccuracy: correct / seen,
      valLoss: val.loss,
      valAccuracy: val.accuracy,
      seconds,
      samplesPerSecond: seen / seconds,
    };
    state.record.epochs.push(row);
    const metric = recipe.monitor === 'val_accuracy' ? val.accuracy : val.loss;
    if (improved(recipe.monitor, metric, state.bestMetric)) {
      state.bestMetric = metric;
      state.record.bestEpoch = epoch;
      state.stale = 0;
      if (paths) tidy(() => saveSafetensors(paths.best, model.stateDict()));
      else rememberBest(bestInMemory, model);
    } else {
      state.stale += 1;
    }
    state.record.seconds = (Date.now() - started) / 1000;
    if (paths) {
      tidy(() => {
        saveSafetensors(paths.weights, model.stateDict());
        saveSafetensors(paths.optimizer, optimizer.stateDict());
      });
      writeJsonAtomic(paths.state, state);
    }
    opts.onEpoch?.(row);
    if (state.stale >= recipe.patience) {
      state.record.stoppedEarly = true;
      break;
    }
  }
  if (paths && existsSync(paths.best)) tidy(() => model.loadStateDict(loadSafetensors(paths.best).tensors));
  if (bestInMemory.size) {
    model.loadStateDict(bestInMemory);
    dispose([...bestInMemory.values()]);
  }
  optimizer.dispose();
  return finish(state.record, started);
}

/** Keeps a copy of the weights of the best epoch so far (when no checkpoint folder is used). */
function rememberBest(best: Map<string, Tensor>, model: KwsModel): void {
  dispose([...best.values()]);
  best.clear();
  for (const [name, t] of model.stateDict()) best.set(name, keep(noGrad(() => t.clone())));
}

function finish(record: TrainingRecord, started: number): TrainingRecord {
  return { ...record, seconds: record.seconds || (Date.now() - started) / 1000 };
}
