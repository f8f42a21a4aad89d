// JingleBack (Koffas et al., ICASSP'23; specs/attacks.md section 3): the whole clip through a guitar-pedal
// effect chain. GN-FT uses style 5 ([GNFT] jingleback.py --style 5): Gain +12 dB -> Ladder HPF12 at 1 kHz ->
// Phaser 1 Hz / depth 0.5 / 1300 Hz, per sample at 16 kHz, not clipped or renormalised before the MFCC.
// Styles 0-3 exist too (their DSP is in src/audio/effects; pitch shifts use a phase vocoder where pedalboard
// used Rubber Band); style 4 would need a reverb and is not offered.
import { jingleStyle, jingleStyles } from '../../audio/effects/index.ts';
import { mapRows } from '../../audio/effects/map-rows.ts';
import { registerAttack } from '../registry.ts';
import type { AttackSpec } from '../types.ts';
import { waveformTransformAttack } from '../waveform-transform.ts';

export const jinglebackOptions = {
  style: { type: 'enum', default: 5, values: jingleStyles, help: 'effect chain: 5 = gain, ladder high-pass, phaser ([GNFT] default); 0-3 as [KOF-J]' },
} as const;

export const jingleback: AttackSpec = waveformTransformAttack({
  name: 'jingleback',
  description: 'JingleBack: the clip through a pedal chain (style 5: +12 dB, ladder HPF12 1 kHz, phaser)',
  options: jinglebackOptions,
  frontEndProblem: () => null,
  transform: (o, frontEnd) => {
    const style = Number(o.style);
    return (batch) => mapRows(batch, (clip) => jingleStyle(style, clip, frontEnd.sampleRate));
  },
});

registerAttack(jingleback);
