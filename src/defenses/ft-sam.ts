// FT-SAM: fine-tuning with (adaptive) sharpness-aware minimisation (Zhu et al., ICCV'23; specs/defenses.md
// section 6; [BB] defense/ft-sam.py, utils/defense_utils/sam/sam.py). Each step takes the gradient at the
// perturbed weights theta + e, e = rho theta^2 g / || |theta| g || (ASAM, [BB]'s default: `--adaptive` is a
// store_false flag) or e = rho g / ||g|| (SAM), on the same batch, with BatchNorm's running statistics left
// untouched by the perturbed pass, and steps from theta with it. That is GN-FT's finite-difference step with
// alpha = 1 (only the perturbed gradient), so it reuses gnft-step.ts; rho = 0 is plain fine-tuning.
//
// Not reproduced: [BB] steps its cosine schedule per batch with T_max 100, so the rate oscillates with a
// period of 200 batches whatever the epoch count; the loop's cosine runs once over the epochs.

import { fineTuneOptionSpecs, fineTuningDefense, ftRecipes } from './fine-tune-frame.ts';
import { gradNormFineTuneStep } from './gnft-step.ts';
import { registerDefense } from './registry.ts';
import type { DefenseSpec } from './types.ts';

export const ftSamOptions = {
  ...fineTuneOptionSpecs,
  rho: { type: 'number', default: 2.0, min: 0, help: 'perturbation radius ([BB] ft-sam: rho 2.0, with the adaptive radius)' },
  adaptive: { type: 'boolean', default: true, help: 'ASAM radius relative to the weights (|theta| scaling); false: plain SAM ([BB]: adaptive)' },
  labelSmoothing: { ...fineTuneOptionSpecs.labelSmoothing, default: 0.1, help: 'label smoothing of the cross-entropy ([BB] ft-sam: 0.1)' },
} as const;

export const ftSam: DefenseSpec<typeof ftSamOptions> = fineTuningDefense({
  name: 'ft-sam',
  description: 'FT-SAM: fine-tuning with adaptive sharpness-aware minimisation on the clean clips (BackdoorBench FT-SAM)',
  options: ftSamOptions,
  // [BB] ft-sam.py trains as FT does: SGD 0.01, momentum 0.9, wd 5e-4, 100 epochs (the option defaults)
  recipes: ftRecipes,
  // FT's phase name, which seeds the batch order: for a seed, FT and FT-SAM see the same batches, so the
  // two differ only by the step (and rho = 0 reproduces FT bit for bit). Checkpoints are ft-* files.
  phase: 'ft',
  // SAM is GN-FT's step with alpha 1: all of the gradient taken at the perturbed weights.
  step: (model, o) => gradNormFineTuneStep(model, { r: o.rho, alpha: 1, normalization: o.adaptive ? 'adaptive' : 'global', clipNorm: o.clipNorm }),
});

registerDefense(ftSam);
