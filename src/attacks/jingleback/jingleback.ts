// JingleBack (Koffas et al., ICASSP'23; specs/attacks.md section 3): the whole clip through a guitar-pedal
// effect chain. GN-FT uses style 5 ([GNFT] jingleback.py --style 5): Gain +12 dB -> Ladder HPF12 at 1 kHz ->
// Phaser 1 Hz / depth 0.5 / 1300 Hz, per sample at 16 kHz, not clipped or renormalised before the MFCC.
// Styles 0-3 exist too (their DSP is in src/audio/effects; pitch shifts use a phase vocoder where pedalboard
// used Rubber Band); style 4 would need a reverb and is not offered.
import { jingleStyle, jingleStyles } from '../../audio/effects/index.ts';
import { mapRows } from '../../audio/effects/map-rows.ts';
import { resolveOptions } from '../../options/options.ts';
import { dirtyLabelPlan } from '../poison-plan.ts';
import { registerAttack } from '../registry.ts';
import { baseArtifact, makeTrigger } from '../trigger.ts';
import type { AttackSpec } from '../types.ts';

export const jinglebackOptions = {
  style: { type: 'enum', default: 5, values: jingleStyles, help: 'effect chain: 5 = gain, ladder high-pass, phaser ([GNFT] default); 0-3 as [KOF-J]' },
} as const;

export const jingleback: AttackSpec = {
  name: 'jingleback',
  description: 'JingleBack: the clip through a pedal chain (style 5: +12 dB, ladder HPF12 1 kHz, phaser)',
  domain: 'waveform',
  labelMode: 'dirty',
  options: jinglebackOptions,
  frontEndFor: (_kind, modelDefault) => modelDefault,
  frontEndProblem: () => null,
  async prepare(ctx) {
    const options = resolveOptions('jingleback', jinglebackOptions, ctx.options);
    const target = ctx.classes[ctx.targetLabel];
    return {
      plan: dirtyLabelPlan({
        attack: 'jingleback',
        labels: ctx.train.labels,
        target,
        targetLabel: ctx.targetLabel,
        poisonRatio: ctx.poisonRatio,
        seed: ctx.seed,
      }),
      artifact: baseArtifact('jingleback', options, ctx.seed, ctx.frontEnd.name),
    };
  },
  trigger(artifact, phase, frontEnd) {
    const style = Number(artifact.options.style);
    return makeTrigger(artifact, phase, 'waveform', (batch) => mapRows(batch, (clip) => jingleStyle(style, clip, frontEnd.sampleRate)));
  },
};

registerAttack(jingleback);
