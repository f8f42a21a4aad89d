// VSVC-DSP: a DSP stand-in for VSVC (Cai et al., ICASSP'23 / TIFS'24; specs/attacks.md section 7). The
// original re-voices each clip into a fixed timbre with a pre-trained StarGANv2-VC network, which is not
// available here. This substitute applies one fixed global timbre transform to the whole clip: a formant
// warp (cepstral envelope, env'(f) = env(f / alpha), alpha 1.2: male-to-female-like), a +3 semitone pitch
// shift so pitch and formants move together as in a speaker change, and peak normalisation back to the
// clip's own peak. The fixed (alpha, semitones) pair is the "timbre ID". Results are named vsvc-dsp, never
// VSVC, and are expected to differ from the original (easier to detect, a different ASR).
import { formantWarp, pitchShift } from '../../audio/effects/index.ts';
import { abs, div, max, mul, tidy } from '../../torch/index.ts';
import { needs16k } from '../needs-16k.ts';
import { registerAttack } from '../registry.ts';
import type { AttackSpec } from '../types.ts';
import { waveformTransformAttack } from '../waveform-transform.ts';

export const vsvcDspOptions = {
  alpha: { type: 'number', default: 1.2, above: 0, help: 'formant warp env(f / alpha) (spec: about 1.2, or 0.83)' },
  semitones: { type: 'number', default: 3, help: 'pitch shift that goes with the warp (spec: e.g. +3)' },
  lifter: { type: 'integer', default: 30, min: 2, help: 'cepstral coefficients kept for the envelope (spec: ~30)' },
} as const;

export const vsvcDsp: AttackSpec = waveformTransformAttack({
  name: 'vsvc-dsp',
  description: 'VSVC-DSP: a fixed formant warp (alpha 1.2) + 3 semitone pitch shift, a DSP substitute for StarGANv2-VC voice conversion',
  substitution: 'DSP timbre transform standing in for VSVC (StarGANv2-VC voice conversion); not the original attack',
  options: vsvcDspOptions,
  frontEndProblem: (frontEnd) => needs16k('VSVC-DSP', frontEnd, 'use mfcc-16k (spectral models) or waveform-16k (eat)'),
  optionsProblem: (frontEnd) => needs16k('VSVC-DSP', frontEnd, 'use mfcc-16k or waveform-16k'),
  transform: (o, frontEnd) => (batch) =>
    tidy(() => {
      const warped = formantWarp(batch, frontEnd.sampleRate, o.alpha, { lifter: o.lifter });
      const shifted = pitchShift(warped, o.semitones);
      // Peak-normalised to each clip's original peak (spec step 3); silent clips stay silent.
      const peak = max(abs(batch), 1, true);
      const newPeak = max(abs(shifted), 1, true).clamp(1e-8);
      return mul(shifted, div(peak, newPeak));
    }),
});

registerAttack(vsvcDsp);
