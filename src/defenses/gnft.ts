// GN-FT: gradient-norm-penalised fine-tuning (../shared/papers/gn-ft-zhou-lin-liu.txt, Algorithm 1;
// specs/defenses.md 1.1-1.5). Every step takes g = (1 - alpha) g1 + alpha g2 with g2 the gradient at
// theta + r g1/||g1|| on the same batch (gnft-step.ts), or with `exact` the true gradient of
// CE + alpha r ||grad CE|| by a Hessian-vector product.
//
// Two recipes, run side by side in every table:
//   paper   - what the paper states (r 0.05, alpha 0.7, 5% clean data, SGD) completed by the first
//             author's speech code ([AUD] ft_reg.py): per-tensor normalisation, SGD lr 1e-3, momentum 0.9,
//             no weight decay, batch 256, 300 epochs, BatchNorm in train mode, the last epoch kept.
//   default - the project's recipe, chosen by the study in docs/gnft-study.md on clean data only.

import { fineTuneOptionSpecs, fineTuningDefense } from './fine-tune-frame.ts';
import { defaultGnftRecipe } from './gnft-recipe.ts';
import { gradNormFineTuneStep } from './gnft-step.ts';
import { registerDefense } from './registry.ts';
import type { DefenseSpec } from './types.ts';

export const gnftOptions = {
  ...fineTuneOptionSpecs,
  r: { type: 'number', default: 0.05, min: 0, help: 'perturbation radius (GN-FT paper: 0.05)' },
  alpha: { type: 'number', default: 0.7, min: 0, max: 1, help: 'weight of the perturbed gradient, lambda / r (GN-FT paper: 0.7)' },
  normalization: {
    type: 'enum',
    default: 'per-tensor',
    values: ['per-tensor', 'global', 'adaptive'],
    help: "how g1 is normalised: per tensor ([AUD], TSBD), one global norm (GNP), or ASAM's radius relative to the weights",
  },
  exact: { type: 'boolean', default: false, help: 'the exact gradient of CE + alpha r ||grad CE|| (Hessian-vector product) instead of the finite difference' },
  lr: { ...fineTuneOptionSpecs.lr, default: 1e-3, help: 'peak learning rate ([AUD] ft_reg.py: 1e-3)' },
  weightDecay: { ...fineTuneOptionSpecs.weightDecay, default: 0, help: 'weight decay ([AUD], TSBD: none)' },
  epochs: { ...fineTuneOptionSpecs.epochs, default: 300, help: 'epochs ([AUD] ft_reg.py: 300, hard-coded)' },
  schedule: { ...fineTuneOptionSpecs.schedule, default: 'constant', help: 'learning-rate schedule ([AUD], TSBD: none)' },
} as const;

export const gnft: DefenseSpec<typeof gnftOptions> = fineTuningDefense({
  name: 'gnft',
  description: 'GN-FT: fine-tuning with a gradient-norm penalty (Zhou, Lin & Liu), by a finite difference or exactly',
  options: gnftOptions,
  recipes: {
    paper: { shortBatch: 'keep', batchNorm: 'train', select: 'last', holdout: 0 },
    default: defaultGnftRecipe,
  },
  phase: 'gnft',
  step: (model, o) => gradNormFineTuneStep(model, o),
});

registerDefense(gnft);
