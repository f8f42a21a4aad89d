// The fine-tuning loop FT, FP and GN-FT share: epochs over the defender's fit clips with a plain or a
// GN-FT step, a deliberate policy for the short last batch and for BatchNorm, a checkpoint after every
// epoch (resumable), and the model chosen on the clean hold-out only.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { writeJsonAtomic } from '../data/atomic.ts';
import { augmentBatch, batchShift, defaultTimeAxis, type InputTimeAxis, lightAugment, randomTimeShift } from '../data/augment.ts';
import { batchIndices, type FeatureSet, gatherBatch } from '../data/feature-set.ts';
import { createRng, deriveSeed, type Rng } from '../data/rng.ts';
import { accuracyAndLoss } from '../models/predict.ts';
import type { KwsModel } from '../models/registry.ts';
import { adam, applySchedule, clipGradNorm, constantSchedule, cosineSchedule, isBatchNorm, type Optimizer, recalibrateBatchNorm, sgd } from '../nn/index.ts';
import {
  add,
  backward,
  crossEntropy,
  dispose,
  indexSelect,
  keep,
  loadSafetensors,
  manualSeed,
  mul,
  noGrad,
  saveSafetensors,
  type Tensor,
  tensor,
  tidy,
} from '../torch/index.ts';
import type { DefenseEpoch, DefenseProgress } from './types.ts';

export interface FineTuneSettings {
  epochs: number;
  /** optimizer updates in all; when set (> 0) it decides the epochs, so the budget does not grow with the clean set */
  steps?: number;
  batchSize: number;
  optimizer: 'sgd' | 'adam';
  lr: number;
  momentum: number;
  weightDecay: number;
  /**
   * 'multistep': the NGF release's MultiStepLR (gamma 0.1, milestones int(0.35 E) and int(0.75 E)), stepped
   * at the start of each of its E "epochs", so epoch e runs at the rate PyTorch gives epoch e + 1.
   */
  schedule: 'cosine' | 'constant' | 'multistep';
  /** the cosine schedule's floor (PyTorch's eta_min; 0 when unset) */
  minLr?: number;
  /** linear warm-up of the learning rate over this many epochs (per step), then the schedule */
  warmupEpochs: number;
  /**
   * The last batch when the fit clips do not divide evenly: 'merge' it into the one before (every clip
   * is used, no tiny batch), 'drop' it (reshuffled each epoch), or 'keep' it as it is. A train-mode
   * BatchNorm pass on 7 clips corrupts the running statistics (measured before this loop existed).
   */
  shortBatch: 'merge' | 'drop' | 'keep';
  /**
   * 'train': batch statistics, running statistics updated (PyTorch's default);
   * 'frozen': BatchNorm in eval mode throughout (running statistics used and kept);
   * 'recalibrate': as 'train', then the running statistics re-estimated on all fit clips after every
   *   epoch, so hold-out checks and the final model use statistics of the data, not of the last batches.
   */
  batchNorm: 'train' | 'frozen' | 'recalibrate';
  /** which epoch's weights to keep: the last, or the best on the clean hold-out */
  select: 'last' | 'holdout-accuracy' | 'holdout-loss';
  labelSmoothing: number;
  /**
   * MixUp (Zhang et al. 2018) with lambda ~ Beta(1, 1): each batch is blended with a shuffled copy of
   * itself and the loss weighs both labels. It gives a few clean clips a gradient signal long after their
   * own loss is ~0 (NFT uses it for the same reason).
   */
  mixup: boolean;
  /**
   * The victim's own light augmentation (src/data/augment.ts: time shift and noise) on every fit batch,
   * made once per batch so GN-FT's two passes see the same clips. A few clean clips are memorised within
   * tens of steps; shifted, noisy copies keep the fit set from shrinking to a point.
   */
  augment: boolean;
  /**
   * How batches are made: 'shuffle' (unset: passes over the fit clips, each clip once a pass, under
   * shortBatch) or 'replacement' (the NFT and NGF releases' RandomSampler: exactly `steps` full batches, each
   * clip drawn with replacement, in blocks of `blockSteps` batches that take an epoch's place for the
   * schedule, the hold-out check and the checkpoint; the last block holds what remains of the steps).
   */
  sampling?: 'shuffle' | 'replacement';
  blockSteps?: number;
  /** each clip shifted along time by up to this fraction of its length (randomTimeShift), before MixUp; 0 or unset: off */
  timeShift?: number;
}

/** The MixUp loss of one batch: x~ = l x + (1 - l) x[perm], l CE(f(x~), y) + (1 - l) CE(f(x~), y[perm]). */
export function mixupLoss(model: KwsModel, x: Tensor, y: Tensor, rng: Rng, labelSmoothing = 0): () => Tensor {
  const lambda = rng.next(); // Beta(1, 1) is uniform on [0, 1)
  const order = rng.shuffle(Array.from({ length: x.size(0) }, (_, i) => i));
  const perm = tensor(BigInt64Array.from(order, BigInt));
  const mixed = add(mul(x, lambda), mul(indexSelect(x, 0, perm), 1 - lambda));
  const yPerm = indexSelect(y, 0, perm);
  return () => {
    const logits = model.forward(mixed);
    return add(mul(crossEntropy(logits, y, { labelSmoothing }), lambda), mul(crossEntropy(logits, yPerm, { labelSmoothing }), 1 - lambda));
  };
}

export type StepFn = (optimizer: Optimizer, lossFn: () => Tensor) => number;

/** The plain step: backward, optional clipping of the global gradient norm, optimizer step. */
export function plainStep(clipNorm = 0): StepFn {
  return (optimizer, lossFn) => {
    optimizer.zeroGrad();
    const loss = tidy(() => {
      const l = lossFn();
      backward(l);
      return l.item();
    });
    if (clipNorm > 0) clipGradNorm(optimizer.params, clipNorm);
    optimizer.step();
    return loss;
  };
}

export interface FineTuneOptions {
  phase: string;
  settings: FineTuneSettings;
  step: StepFn;
  seed: number;
  /** called after every optimizer step (FP re-applies its pruning mask here) */
  afterStep?: () => void;
  progress?: DefenseProgress;
  checkpointDir?: string;
  resume?: boolean;
  /** what dim 1 of an input is (for `augment`'s shift in seconds and its noise); default: MFCC frames every 10 ms */
  timeAxis?: InputTimeAxis;
}

export interface FineTuneResult {
  epochs: DefenseEpoch[];
  /** the epoch whose weights the model holds at the end (-1: the starting weights) */
  chosenEpoch: number;
  steps: number;
}

/** `count` batches of `batchSize` fit-clip indices drawn with replacement (PyTorch's RandomSampler(replacement=True)). */
export function drawnBatches(size: number, batchSize: number, count: number, seed: number): number[][] {
  const rng = createRng(seed);
  return Array.from({ length: count }, () => Array.from({ length: batchSize }, () => rng.int(size)));
}

/** The batches of block `epoch` when batches are drawn with replacement: blockSteps, or what remains of the steps. */
function blockLength(s: FineTuneSettings, epoch: number): number {
  const block = s.blockSteps ?? 200;
  return Math.min(block, (s.steps as number) - epoch * block);
}

/** The NGF release's MultiStepLR over `epochs` epochs, stepped before each epoch (see FineTuneSettings.schedule). */
export function releaseMultiStepSchedule(lr: number, epochs: number): (epoch: number) => number {
  const milestones = [Math.floor(0.35 * epochs), Math.floor(0.75 * epochs)];
  return (epoch) => lr * 0.1 ** milestones.filter((m) => m <= epoch + 1).length;
}

/** Batches of fit-clip indices for one epoch under the short-batch policy. */
export function epochBatches(size: number, batchSize: number, policy: FineTuneSettings['shortBatch'], seed: number): number[][] {
  const batches = batchIndices(size, batchSize, { shuffle: true, seed });
  const last = batches[batches.length - 1];
  if (batches.length > 1 && last.length < batchSize) {
    if (policy === 'drop') batches.pop();
    else if (policy === 'merge') batches[batches.length - 2].push(...(batches.pop() as number[]));
  }
  return batches;
}

function makeOptimizer(model: KwsModel, s: FineTuneSettings): Optimizer {
  const params = model.trainableParameters();
  return s.optimizer === 'adam'
    ? adam(params, { lr: s.lr, weightDecay: s.weightDecay })
    : sgd(params, { lr: s.lr, momentum: s.momentum, weightDecay: s.weightDecay });
}

/** Training mode for the loop: BatchNorm layers in eval mode when they are frozen. */
export function setTrainingMode(model: KwsModel, batchNorm: FineTuneSettings['batchNorm']): void {
  model.train();
  if (batchNorm === 'frozen') for (const m of model.modules().filter(isBatchNorm)) m.training = false;
}

/** Running BatchNorm statistics re-estimated on the fit clips (batches of the loop's size). */
export function recalibrateOn(model: KwsModel, fit: FeatureSet, batchSize: number): void {
  const batches = batchIndices(fit.size, Math.max(batchSize, 64));
  recalibrateBatchNorm(
    model,
    (x) => model.forward(x),
    (function* () {
      for (const b of batches) {
        const x = tidy(() => keep(gatherBatch(fit, b).x));
        try {
          yield x;
        } finally {
          x.dispose();
        }
      }
    })(),
  );
}

interface LoopState {
  epochs: DefenseEpoch[];
  best: number;
  bestEpoch: number;
  steps: number;
}

function better(select: FineTuneSettings['select'], row: DefenseEpoch, best: number): boolean {
  if (select === 'holdout-accuracy') return row.holdoutAccuracy >= best; // ties go to the later epoch
  if (select === 'holdout-loss') return -row.holdoutLoss >= best;
  return true;
}

/**
 * Settings with the step budget turned into epochs: `steps` optimizer updates whatever the clean set's
 * size (0 keeps `epochs`). A recipe written as epochs means 5x more updates on 5x more clean clips; written
 * as steps it means the same amount of moving away from the backdoored weights.
 */
export function withStepBudget(s: FineTuneSettings, fitClips: number): FineTuneSettings {
  if (s.sampling === 'replacement') {
    if (!s.steps) throw new Error('sampling=replacement draws `steps` batches; set steps above 0');
    return { ...s, epochs: Math.ceil(s.steps / (s.blockSteps ?? 200)) };
  }
  if (!s.steps) return s;
  const perEpoch = epochBatches(fitClips, s.batchSize, s.shortBatch, 0).length;
  return { ...s, epochs: Math.max(1, Math.ceil(s.steps / perEpoch)) };
}

/** Fine-tunes `model` in place on `fit`, checking `holdout` after every epoch. */
export async function fineTune(model: KwsModel, fit: FeatureSet, holdout: FeatureSet | null, o: FineTuneOptions): Promise<FineTuneResult> {
  const s = withStepBudget(o.settings, fit.size);
  if (s.select !== 'last' && !holdout) throw new Error(`fine-tuning with select=${s.select} needs a clean hold-out; set holdout above 0`);
  const optimizer = makeOptimizer(model, s);
  const timeAxis = o.timeAxis ?? defaultTimeAxis;
  const schedule =
    s.schedule === 'cosine'
      ? cosineSchedule(s.lr, s.epochs, s.minLr ?? 0)
      : s.schedule === 'multistep'
        ? releaseMultiStepSchedule(s.lr, s.epochs)
        : constantSchedule(s.lr);
  const files = o.checkpointDir
    ? {
        weights: path.join(o.checkpointDir, `${o.phase}-last.safetensors`),
        optimizer: path.join(o.checkpointDir, `${o.phase}-optimizer.safetensors`),
        best: path.join(o.checkpointDir, `${o.phase}-best.safetensors`),
        state: path.join(o.checkpointDir, `${o.phase}-state.json`),
      }
    : null;
  if (o.checkpointDir) mkdirSync(o.checkpointDir, { recursive: true });
  let state: LoopState = { epochs: [], best: Number.NEGATIVE_INFINITY, bestEpoch: -1, steps: 0 };
  if (files && o.resume && existsSync(files.state)) {
    state = JSON.parse(readFileSync(files.state, 'utf8')) as LoopState;
    tidy(() => {
      model.loadStateDict(loadSafetensors(files.weights).tensors);
      optimizer.loadStateDict(loadSafetensors(files.optimizer).tensors);
    });
  }
  const bestInMemory = new Map<string, Tensor>();
  const remember = () => {
    if (files) tidy(() => saveSafetensors(files.best, model.stateDict()));
    else {
      dispose([...bestInMemory.values()]);
      for (const [name, t] of model.stateDict()) bestInMemory.set(name, keep(noGrad(() => t.clone())));
    }
  };
  if (s.select !== 'last' && holdout && state.epochs.length === 0) {
    // The starting weights compete too: a defense may not make the model worse on the hold-out.
    const start = accuracyAndLoss(model, holdout);
    state.best = s.select === 'holdout-accuracy' ? start.accuracy : -start.loss;
    remember();
  }
  try {
    for (let epoch = state.epochs.length; epoch < s.epochs; epoch++) {
      const started = Date.now();
      const lr = applySchedule(optimizer, schedule, epoch);
      manualSeed(deriveSeed(o.seed, o.phase, epoch) % 2 ** 31);
      const batches =
        s.sampling === 'replacement'
          ? drawnBatches(fit.size, s.batchSize, blockLength(s, epoch), deriveSeed(o.seed, o.phase, 'draw', epoch))
          : epochBatches(fit.size, s.batchSize, s.shortBatch, deriveSeed(o.seed, o.phase, 'shuffle', epoch));
      const shiftRng = createRng(deriveSeed(o.seed, o.phase, 'time-shift', epoch));
      setTrainingMode(model, s.batchNorm);
      const mixRng = createRng(deriveSeed(o.seed, o.phase, 'mixup', epoch));
      let lossSum = 0;
      let seen = 0;
      for (let b = 0; b < batches.length; b++) {
        const warm = s.warmupEpochs > 0 && epoch < s.warmupEpochs ? Math.min(1, (epoch + (b + 1) / batches.length) / s.warmupEpochs) : 1;
        optimizer.lr = lr * warm;
        optimizer.zeroGrad();
        // The batch (and its MixUp) is made once: GN-FT's step calls lossFn twice on the same batch.
        const loss = tidy(() => {
          const batch = gatherBatch(fit, batches[b]);
          const shifted = s.timeShift ? randomTimeShift(batch.x, s.timeShift, shiftRng) : batch.x;
          const x = s.augment ? augmentBatch(shifted, lightAugment, timeAxis, batchShift(lightAugment, timeAxis, epoch, b)) : shifted;
          const y = batch.y;
          return o.step(
            optimizer,
            s.mixup ? mixupLoss(model, x, y, mixRng, s.labelSmoothing) : () => crossEntropy(model.forward(x), y, { labelSmoothing: s.labelSmoothing }),
          );
        });
        o.afterStep?.();
        if (!Number.isFinite(loss)) throw new Error(`${o.phase}: the loss became ${loss} at epoch ${epoch + 1}; lower the learning rate`);
        lossSum += loss * batches[b].length;
        seen += batches[b].length;
        state.steps += 1;
        o.progress?.step?.(o.phase, b + 1, batches.length, `epoch ${epoch + 1}/${s.epochs} loss ${(lossSum / seen).toFixed(3)}`);
        if (b % 4 === 3) await new Promise((resolve) => setImmediate(resolve));
      }
      if (s.batchNorm === 'recalibrate') recalibrateOn(model, fit, s.batchSize);
      const check = holdout ? accuracyAndLoss(model, holdout) : { accuracy: Number.NaN, loss: Number.NaN };
      const row: DefenseEpoch = {
        phase: o.phase,
        epoch,
        epochs: s.epochs,
        lr,
        loss: seen ? lossSum / seen : Number.NaN,
        holdoutAccuracy: check.accuracy,
        holdoutLoss: check.loss,
        seconds: (Date.now() - started) / 1000,
      };
      state.epochs.push(row);
      if (s.select !== 'last' && better(s.select, row, state.best)) {
        state.best = s.select === 'holdout-accuracy' ? row.holdoutAccuracy : -row.holdoutLoss;
        state.bestEpoch = epoch;
        remember();
      }
      if (files) {
        tidy(() => {
          saveSafetensors(files.weights, model.stateDict());
          saveSafetensors(files.optimizer, optimizer.stateDict());
        });
        writeJsonAtomic(files.state, state);
      }
      o.progress?.epoch?.(row);
    }
    let chosenEpoch = s.epochs - 1;
    if (s.select !== 'last') {
      chosenEpoch = state.bestEpoch;
      if (files && existsSync(files.best)) tidy(() => model.loadStateDict(loadSafetensors(files.best).tensors));
      else if (bestInMemory.size) model.loadStateDict(bestInMemory);
    }
    return { epochs: state.epochs, chosenEpoch, steps: state.steps };
  } finally {
    dispose([...bestInMemory.values()]);
    optimizer.dispose();
    model.eval();
  }
}

/** A seeded, class-stratified split of the clean clips into fit and hold-out parts (at least one of each class in fit). */
export function holdoutIndices(labels: readonly number[], fraction: number, seed: number): { fit: number[]; holdout: number[] } {
  if (!(fraction >= 0 && fraction < 1)) throw new RangeError(`hold-out fraction must be in [0, 1), got ${fraction}`);
  const byClass = new Map<number, number[]>();
  labels.forEach((l, i) => byClass.set(l, [...(byClass.get(l) ?? []), i]));
  const rng = createRng(deriveSeed(seed, 'holdout'));
  const fit: number[] = [];
  const holdout: number[] = [];
  for (const label of [...byClass.keys()].sort((a, b) => a - b)) {
    const pool = rng.shuffle([...(byClass.get(label) as number[])]);
    const take = fraction > 0 ? Math.min(pool.length - 1, Math.max(1, Math.round(fraction * pool.length))) : 0;
    holdout.push(...pool.slice(0, take));
    fit.push(...pool.slice(take));
  }
  return { fit: fit.sort((a, b) => a - b), holdout: holdout.sort((a, b) => a - b) };
}
