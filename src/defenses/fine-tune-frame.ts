// The frame every defense runs in, and the fine-tuning options the fine-tuning defenses share: begin()
// checks the clean set and splits off the clean hold-out, finish() writes the report around the defense's
// own work (fine-tuning, pruning, masks). Options arrive resolved (types.ts defineDefense), typed by the
// defense's declaration.
import { disposeFeatureSet, type FeatureSet, subsetOf } from '../data/feature-set.ts';
import { accuracyAndLoss } from '../models/predict.ts';
import type { KwsModel } from '../models/registry.ts';
import type { OptionSpec, OptionSpecs, OptionsOf } from '../options/options.ts';
import { type FineTuneOptions as FineTuneLoopOptions, type FineTuneSettings, fineTune, holdoutIndices, type StepFn } from './fine-tune.ts';
import { type CleanData, type DefenseContext, type DefenseReport, type DefenseSpec, defineDefense } from './types.ts';

/** The fine-tuning options every fine-tuning defense takes; defaults are BackdoorBench's FT ([BB] config/defense/ft). */
export const fineTuneOptionSpecs = {
  epochs: { type: 'integer', default: 100, min: 1, help: 'fine-tuning epochs ([BB] FT: 100)' },
  steps: { type: 'integer', default: 0, min: 0, help: 'optimizer updates in all; > 0 overrides epochs (a budget that does not grow with the clean set)' },
  batchSize: { type: 'integer', default: 256, min: 1, help: 'batch size ([BB]: 256)' },
  optimizer: { type: 'enum', default: 'sgd', values: ['sgd', 'adam'], help: 'optimizer ([BB]: SGD)' },
  lr: { type: 'number', default: 0.01, above: 0, help: 'peak learning rate ([BB] FT: 0.01)' },
  momentum: { type: 'number', default: 0.9, min: 0, max: 0.999, help: 'SGD momentum ([BB]: 0.9)' },
  weightDecay: { type: 'number', default: 5e-4, min: 0, help: 'weight decay ([BB] FT: 5e-4)' },
  schedule: { type: 'enum', default: 'cosine', values: ['cosine', 'constant'], help: 'learning-rate schedule ([BB]: cosine, T_max = epochs)' },
  warmupEpochs: { type: 'number', default: 0, min: 0, help: 'linear learning-rate warm-up, in epochs' },
  shortBatch: {
    type: 'enum',
    default: 'merge',
    values: ['merge', 'drop', 'keep'],
    help: 'the short last batch: merge it into the one before, drop it, or keep it',
  },
  batchNorm: {
    type: 'enum',
    default: 'recalibrate',
    values: ['train', 'frozen', 'recalibrate'],
    help: 'BatchNorm while fine-tuning: train mode, eval mode, or train mode with statistics re-estimated on the fit clips each epoch',
  },
  select: {
    type: 'enum',
    default: 'last',
    values: ['last', 'holdout-accuracy', 'holdout-loss'],
    help: 'the epoch kept: the last, or the best on the clean hold-out',
  },
  holdout: { type: 'number', default: 0.2, min: 0, max: 0.9, help: 'share of the clean clips kept aside for checks and choices (stratified)' },
  labelSmoothing: { type: 'number', default: 0, min: 0, max: 0.9, help: 'label smoothing of the cross-entropy' },
  mixup: { type: 'boolean', default: false, help: 'MixUp with lambda ~ Beta(1, 1) on every batch (NFT uses it)' },
  augment: {
    type: 'boolean',
    default: false,
    help: "the victim's training augmentation on every fit batch: a time shift of up to 50 ms and light noise (BackdoorBench fine-tunes with its train-time augmentation too)",
  },
  clipNorm: { type: 'number', default: 0, min: 0, help: 'clip the global gradient norm to this (0: off)' },
} as const satisfies OptionSpecs;

/**
 * FT's recipes, FT-SAM's too (its option defaults are FT's optimiser). paper: [BB] as written, the short
 * batch kept, BatchNorm in train mode, the last epoch, every clean clip fit. default: the project's, the
 * same optimiser with the batching and BatchNorm handling of GN-FT's default and a 20% hold-out.
 */
export const ftRecipes = {
  paper: { shortBatch: 'keep', batchNorm: 'train', select: 'last', holdout: 0 },
  default: { shortBatch: 'merge', batchNorm: 'recalibrate', select: 'last', holdout: 0.2 },
};

/** The fine-tuning options as resolved; clipNorm belongs to the step, not to the loop's settings. */
export type FineTuneOptions = Omit<OptionsOf<typeof fineTuneOptionSpecs>, 'clipNorm'>;

// schedule: a defense may declare more schedules than the frame's two (NGF's release 'multistep')
export function fineTuneSettings(o: Omit<FineTuneOptions, 'schedule'> & { schedule: FineTuneSettings['schedule'] }): FineTuneSettings {
  return {
    epochs: o.epochs,
    steps: o.steps ?? 0,
    batchSize: o.batchSize,
    optimizer: o.optimizer,
    lr: o.lr,
    momentum: o.momentum,
    weightDecay: o.weightDecay,
    schedule: o.schedule,
    warmupEpochs: o.warmupEpochs,
    shortBatch: o.shortBatch,
    batchNorm: o.batchNorm,
    select: o.select,
    labelSmoothing: o.labelSmoothing,
    mixup: o.mixup === true,
    augment: o.augment === true,
  };
}

export class CleanDataError extends Error {}

/** Refuses a clean set a defense cannot work with, saying how many clips it needs. */
export function checkCleanData(spec: Pick<DefenseSpec, 'name' | 'needsData' | 'minCleanClips'>, clean: CleanData, holdout: number): void {
  if (!spec.needsData) return;
  const perClass = new Map<number, number>();
  for (const l of clean.labelList) perClass.set(l, (perClass.get(l) ?? 0) + 1);
  const missing = clean.classes.filter((_, c) => !perClass.has(c));
  if (clean.size < spec.minCleanClips) {
    throw new CleanDataError(`${spec.name} needs at least ${spec.minCleanClips} clean clips, got ${clean.size}; raise --clean-ratio`);
  }
  if (missing.length) throw new CleanDataError(`${spec.name}: the clean set has no clip of ${missing.join(', ')}; raise --clean-ratio`);
  if (holdout > 0 && [...perClass.values()].some((n) => n < 2)) {
    throw new CleanDataError(`${spec.name}: a clean hold-out needs at least 2 clips of every class; raise --clean-ratio or set -o holdout=0`);
  }
}

export interface Prepared<O> {
  options: O;
  fit: FeatureSet;
  holdout: FeatureSet | null;
  holdoutBefore: number;
  started: number;
  dispose(): void;
}

/** Checks the clean set and splits it into fit and hold-out clips (options already resolved). */
export function begin<S extends OptionSpecs>(
  spec: DefenseSpec<S>,
  model: KwsModel,
  clean: CleanData,
  ctx: DefenseContext<OptionsOf<S>>,
): Prepared<OptionsOf<S>> {
  const started = Date.now();
  const options = ctx.options;
  // Every defense but the data-free CLP declares a hold-out share.
  const fraction = (options as { holdout?: number }).holdout ?? 0;
  checkCleanData(spec, clean, fraction);
  const split = holdoutIndices(clean.labelList, fraction, ctx.seed);
  const fit = subsetOf(clean, split.fit);
  const holdout = split.holdout.length ? subsetOf(clean, split.holdout) : null;
  const holdoutBefore = holdout ? accuracyAndLoss(model, holdout).accuracy : Number.NaN;
  return {
    options,
    fit,
    holdout,
    holdoutBefore,
    started,
    dispose() {
      disposeFeatureSet(fit);
      if (holdout) disposeFeatureSet(holdout);
    },
  };
}

export function finish<S extends OptionSpecs>(
  spec: DefenseSpec<S>,
  model: KwsModel,
  clean: CleanData,
  p: Prepared<OptionsOf<S>>,
  epochs: DefenseReport['epochs'],
  details: Record<string, unknown>,
): DefenseReport {
  return {
    defense: spec.name,
    // the report keeps them as plain values (they are JSON in metrics.json)
    options: p.options as DefenseReport['options'],
    cleanClips: clean.size,
    fitClips: p.fit.size,
    holdoutClips: p.holdout?.size ?? 0,
    holdoutBefore: p.holdoutBefore,
    holdoutAfter: p.holdout ? accuracyAndLoss(model, p.holdout).accuracy : Number.NaN,
    epochs,
    details,
    seconds: (Date.now() - p.started) / 1000,
  };
}

/** What a fine-tuning defense hands the loop from its context: seed, progress, checkpoints, the input's time axis, resume. */
export function loopContext(ctx: DefenseContext<unknown>): Pick<FineTuneLoopOptions, 'seed' | 'progress' | 'checkpointDir' | 'timeAxis' | 'resume'> {
  return { seed: ctx.seed, progress: ctx.progress, checkpointDir: ctx.checkpointDir, timeAxis: ctx.model.timeAxis, resume: ctx.resume };
}

/** A defense that is one fine-tuning run of the whole model with its own step: FT, FT-SAM and GN-FT. */
/** A declaration holding every fine-tuning option (a defense may change their defaults and add its own). */
type WithFineTuneSpecs = OptionSpecs & Record<keyof typeof fineTuneOptionSpecs, OptionSpec>;

export interface FineTuningDefense<S extends WithFineTuneSpecs> {
  name: string;
  description: string;
  options: S;
  recipes: DefenseSpec<S>['recipes'];
  /** names the checkpoints and seeds the batch order (FT-SAM takes FT's, so both see the same batches) */
  phase: string;
  step(model: KwsModel, options: OptionsOf<S>): StepFn;
}

export function fineTuningDefense<S extends WithFineTuneSpecs>(d: FineTuningDefense<S>): DefenseSpec<S> {
  const spec: DefenseSpec<S> = defineDefense({
    name: d.name,
    description: d.description,
    minCleanClips: 10,
    needsData: true,
    options: d.options,
    recipes: d.recipes,
    async purify(model, clean, ctx) {
      const p = begin(spec, model, clean, ctx);
      try {
        const result = await fineTune(model, p.fit, p.holdout, {
          phase: d.phase,
          // S declares every fine-tuning option; OptionsOf of a generic S cannot show their types
          settings: fineTuneSettings(p.options as FineTuneOptions),
          step: d.step(model, p.options),
          ...loopContext(ctx),
        });
        return finish(spec, model, clean, p, result.epochs, { chosenEpoch: result.chosenEpoch, steps: result.steps });
      } finally {
        p.dispose();
      }
    },
  });
  return spec;
}
