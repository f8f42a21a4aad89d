// FT: vanilla fine-tuning on the defender's clean clips (specs/defenses.md section 2; [BB] defense/ft.py):
// SGD 0.01, momentum 0.9, weight decay 5e-4, cosine over 100 epochs, batch 256.

import { plainStep } from './fine-tune.ts';
import { fineTuneOptionSpecs, fineTuningDefense } from './fine-tune-frame.ts';
import { registerDefense } from './registry.ts';
import type { DefenseSpec } from './types.ts';

export const ft: DefenseSpec<typeof fineTuneOptionSpecs> = fineTuningDefense({
  name: 'ft',
  description: 'vanilla fine-tuning on the clean clips (BackdoorBench FT)',
  options: fineTuneOptionSpecs,
  recipes: {
    // [BB] FT as written: the short batch kept, BatchNorm in train mode, the last epoch, all clean clips fit.
    paper: { shortBatch: 'keep', batchNorm: 'train', select: 'last', holdout: 0 },
    // The project's: the same optimiser, with the batching and BatchNorm handling GN-FT's default uses.
    default: { shortBatch: 'merge', batchNorm: 'recalibrate', select: 'last', holdout: 0.2 },
  },
  phase: 'ft',
  step: (_model, o) => plainStep(o.clipNorm),
});

registerDefense(ft);
