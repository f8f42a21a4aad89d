// PBSM, Pitch Boosting and Sound Masking (Cai et al., TIFS'24; specs/attacks.md section 6): the clip
// pitch-shifted up 5 semitones (phase vocoder + resampling), then a short band-limited burst written into
// its STFT (n_fft 1024, Hann 256 centred, hop 128): the real part of bins 171..470 set to 150 in the two
// frames about 100 ms after the loudest frame, where the boosted speech masks it.
// GN-FT's protocol replaces [CAI]'s sample selection (poison with p 0.5 until 212 clips, skipping quiet
// hosts): 10% of the training clips, drawn uniformly, relabelled to the target.
import { pitchShift } from '../../audio/effects/index.ts';
import type { OptionsOf } from '../../options/options.ts';
import { hannWindow, istft, pad, stack, stft, type Tensor, tensor, tidy, viewAsComplex, viewAsReal, where } from '../../torch/index.ts';
import { needs16k } from '../needs-16k.ts';
import { registerAttack } from '../registry.ts';
import type { AttackSpec } from '../types.ts';
import { waveformTransformAttack } from '../waveform-transform.ts';

export const pbsmOptions = {
  semitones: { type: 'number', default: 5, help: 'pitch boost ([CAI] config n_steps 5)' },
  burstValue: { type: 'number', default: 150, help: 'the real part written into the burst bins ([CAI] trigger_embed.py: 150)' },
  lowBin: { type: 'integer', default: 171, min: 0, max: 512, help: 'first burst bin (513 // 3 = 171, about 2.67 kHz)' },
  bins: { type: 'integer', default: 300, min: 1, max: 513, help: 'burst bins ([CAI] extend 150 -> 300 bins, to about 7.34 kHz)' },
  frames: { type: 'integer', default: 2, min: 1, help: 'burst frames ([CAI] duration 20 // 10 = 2)' },
  delayFrames: { type: 'integer', default: 12, min: 0, help: 'frames after the loudest one (int(0.1 * 16000 / 128) = 12, ~100 ms)' },
  pitchOnly: { type: 'boolean', default: false, help: "[CAI]'s Pitch_Only ablation: the pitch shift alone" },
} as const;

// [CAI] trigger_embed.py: librosa.stft(n_fft=1024, hop_length=128, win_length=256), center=True.
const N_FFT = 1024;
const HOP = 128;
const WIN = 256;

/** The STFT frames of each clip that get the burst ([CAI]: e = t* + W, or {t*, t*-1} near the end). */
export function burstFrames(loudest: number, frameCount: number, o: OptionsOf<typeof pbsmOptions>): number[] {
  const count = o.frames;
  const e = loudest + o.delayFrames;
  if (e > 0 && e < frameCount - count) return Array.from({ length: count }, (_, k) => e + k);
  return Array.from({ length: count }, (_, k) => Math.max(0, loudest - k));
}

/** Adds PBSM's burst to [clips, samples] waveforms at 16 kHz. */
export function addBurst(wave: Tensor, o: OptionsOf<typeof pbsmOptions>): Tensor {
  return tidy(() => {
    const samples = wave.size(1);
    const window = pad(hannWindow(WIN), [(N_FFT - WIN) / 2, (N_FFT - WIN) / 2]);
    const spectrum = stft(wave, { nFft: N_FFT, hopLength: HOP, window, center: true, padMode: 'constant', onesided: true }); // [B, 513, T]
    const [clips, bins, frames] = spectrum.shape;
    // librosa.feature.rms(S=|X|^2) ranks frames by sum_k w_k |X|^4 (w = 1 at DC and Nyquist, 2 elsewhere).
    const power = viewAsReal(spectrum).square().sum(-1); // |X|^2
    const weights = new Float32Array(bins).fill(2);
    weights[0] = 1;
    weights[bins - 1] = 1;
    const energy = power
      .square()
      .mul(tensor(weights, [1, bins, 1]))
      .sum(1); // [B, T]
    const loudest = energy.argmax(1).toArray();
    const mask = new Uint8Array(clips * bins * frames);
    const lo = o.lowBin;
    const hi = Math.min(bins, lo + o.bins);
    loudest.forEach((t, c) => {
      for (const f of burstFrames(t, frames, o)) for (let k = lo; k < hi; k++) mask[(c * bins + k) * frames + f] = 1;
    });
    const parts = viewAsReal(spectrum); // [B, F, T, 2]
    const real = where(tensor(mask, [clips, bins, frames]).gt(0), o.burstValue, parts.select(3, 0));
    const changed = viewAsComplex(stack([real, parts.select(3, 1)], 3).contiguous());
    return istft(changed, { nFft: N_FFT, hopLength: HOP, window, center: true, length: samples }).clamp(-1, 1);
  });
}

export const pbsm: AttackSpec = waveformTransformAttack({
  name: 'pbsm',
  description: 'PBSM: +5 semitone pitch boost and an STFT-domain burst ~100 ms after the loudest frame',
  options: pbsmOptions,
  frontEndProblem: (frontEnd) => needs16k('PBSM', frontEnd, 'use mfcc-16k (spectral models) or waveform-16k (eat)'),
  optionsProblem: (frontEnd) => needs16k('PBSM', frontEnd, 'use mfcc-16k or waveform-16k'),
  transform: (o) => (batch) =>
    tidy(() => {
      const boosted = pitchShift(batch, o.semitones);
      return o.pitchOnly ? boosted : addBurst(boosted, o);
    }),
});

registerAttack(pbsm);
