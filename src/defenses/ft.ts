// FT: vanilla fine-tuning on the defender's clean clips (specs/defenses.md section 2; [BB] defense/ft.py):
// SGD 0.01, momentum 0.9, weight decay 5e-4, cosine over 100 epochs, batch 256.

import { fineTune, plainStep } from './fine-tune.ts';
import { begin, fineTuneOptionSpecs, fineTuneSettings, finish, loopContext } from './fine-tune-frame.ts';
import { registerDefense } from './registry.ts';
import { type DefenseSpec, defineDefense } from './types.ts';

export const ft: DefenseSpec<typeof fineTuneOptionSpecs> = defineDefense({
  name: 'ft',
  description: 'vanilla fine-tuning on the clean clips (BackdoorBench FT)',
  minCleanClips: 10,
  needsData: true,
  options: fineTuneOptionSpecs,
  recipes: {
    // [BB] FT as written: the short batch kept, BatchNorm in train mode, the last epoch, all clean clips fit.
    paper: { shortBatch: 'keep', batchNorm: 'train', select: 'last', holdout: 0 },
    // The project's: the same optimiser, with the batching and BatchNorm handling GN-FT's default uses.
    default: { shortBatch: 'merge', batchNorm: 'recalibrate', select: 'last', holdout: 0.2 },
  },
  async purify(model, clean, ctx) {
    const p = begin(ft, model, clean, ctx);
    try {
      const result = await fineTune(model, p.fit, p.holdout, {
        phase: 'ft',
        settings: fineTuneSettings(p.options),
        step: plainStep(p.options.clipNorm),
        ...loopContext(ctx),
      });
      return finish(ft, model, clean, p, result.epochs, { chosenEpoch: result.chosenEpoch, steps: result.steps });
    } finally {
      p.dispose();
    }
  },
});

registerDefense(ft);
