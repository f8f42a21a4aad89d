// GN-FT's default recipe: the settings the study in docs/gnft-study.md supports (every choice made on the
// defender's clean data alone). Kept apart from gnft.ts so the study's outcome is one reviewable change.
import type { OptionValue } from '../data/options.ts';

export const defaultGnftRecipe: Record<string, OptionValue> = {
  r: 0.05,
  alpha: 0.7,
  normalization: 'per-tensor',
  optimizer: 'sgd',
  lr: 0.01,
  momentum: 0.9,
  weightDecay: 5e-4,
  epochs: 40,
  batchSize: 64,
  schedule: 'cosine',
  shortBatch: 'merge',
  batchNorm: 'recalibrate',
  select: 'last',
  holdout: 0.2,
};
