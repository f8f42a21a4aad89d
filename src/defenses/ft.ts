// FT: vanilla fine-tuning on the defender's clean clips (specs/defenses.md section 2; [BB] defense/ft.py):
// SGD 0.01, momentum 0.9, weight decay 5e-4, cosine over 100 epochs, batch 256.

import { plainStep } from './fine-tune.ts';
import { fineTuneOptionSpecs, fineTuningDefense, ftRecipes } from './fine-tune-frame.ts';
import { registerDefense } from './registry.ts';
import type { DefenseSpec } from './types.ts';

export const ft: DefenseSpec<typeof fineTuneOptionSpecs> = fineTuningDefense({
  name: 'ft',
  description: 'vanilla fine-tuning on the clean clips (BackdoorBench FT)',
  options: fineTuneOptionSpecs,
  recipes: ftRecipes,
  phase: 'ft',
  step: (_model, o) => plainStep(o.clipNorm),
});

registerDefense(ft);
