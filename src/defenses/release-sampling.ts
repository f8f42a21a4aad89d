// How the NFT and NGF releases feed their loops, as options of those two defenses: a fixed number of
// optimizer steps whose batches are drawn with replacement (RandomSampler(replacement=True)), counted in blocks
// that play the part of epochs, and every clip augmented before the step (crop + flip there; a per-clip time
// shift here, src/data/augment.ts randomTimeShift). Their `paper` recipes turn these on; their defaults leave
// them off, so the default recipes batch as the other fine-tuning defenses do.
import type { OptionSpecs, OptionValue } from '../options/options.ts';
import type { FineTuneSettings } from './fine-tune.ts';

export const releaseSamplingOptionSpecs = {
  sampling: {
    type: 'enum',
    default: 'shuffle',
    values: ['shuffle', 'replacement'],
    help: "'shuffle': passes over the fit clips (epochs, or a steps budget rounded up to whole passes); 'replacement': exactly `steps` full batches drawn with replacement, in blocks of blockSteps (the releases' RandomSampler)",
  },
  blockSteps: {
    type: 'integer',
    default: 200,
    min: 1,
    help: 'with sampling=replacement: batches per block, the unit of the schedule, the hold-out check and the checkpoint (the releases\' "epoch"; [NFT]: 200, [NGF]: 100)',
  },
  timeShift: {
    type: 'number',
    default: 0,
    min: 0,
    max: 0.5,
    help: "each clip shifted along time by up to this fraction of its length before MixUp, wrapping (0: off; the paper recipes' 0.125 stands in for the releases' crop of 4 pixels in 32 + flip)",
  },
} as const satisfies OptionSpecs;

/** The release-sampling fields of the loop's settings from resolved options. */
export function releaseSamplingSettings(o: Record<string, OptionValue>): Pick<FineTuneSettings, 'sampling' | 'blockSteps' | 'timeShift'> {
  return {
    sampling: o.sampling as FineTuneSettings['sampling'],
    blockSteps: o.blockSteps as number,
    timeShift: o.timeShift as number,
  };
}
