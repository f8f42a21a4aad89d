// Phase-vocoder time stretch and pitch shift, librosa style (specs/attacks.md §6 step 1: PBSM's +5 semitones):
// stretch the clip by 2^(n/12) keeping its pitch, then resample it back to its length, which scales every frequency
// by 2^(n/12). Batched on tensors: one STFT, vectorised phase propagation (a cumsum), one inverse STFT.
import {
  arange,
  cat,
  complexAbs,
  cos,
  cumsum,
  floor,
  hannWindow,
  indexSelect,
  istft,
  pad,
  round,
  sin,
  stack,
  stft,
  type Tensor,
  tensor,
  tidy,
  toDtype,
  viewAsComplex,
  zeros,
} from '../../torch/index.ts';
import { call } from '../../torch/ops/dispatch.ts';
import { resample } from '../resample.ts';

export interface PhaseVocoderOptions {
  nFft?: number;
  hop?: number;
}

// librosa's time_stretch / pitch_shift STFT (spec §6 step 1).
const DEFAULTS: Required<PhaseVocoderOptions> = { nFft: 2048, hop: 512 };
/** Bound on the smaller term of the resampling ratio; 300 keeps every ratio within 0.002% (0.03 cent) of 2^(n/12). */
const MAX_SMALLER_TERM = 300;
const TWO_PI = 2 * Math.PI;

/**
 * wave [batch, samples] played `rate` times faster with its pitch kept: [batch, round(samples / rate)] (float32).
 * Frame t of the output reads the input at t * rate: magnitudes interpolated between the two neighbouring frames,
 * phases advanced by each bin's measured frequency so that partials stay continuous.
 */
export function timeStretch(wave: Tensor, rate: number, opts: PhaseVocoderOptions = {}): Tensor {
  const { nFft, hop } = { ...DEFAULTS, ...opts };
  if (!(rate > 0 && Number.isFinite(rate))) throw new RangeError(`timeStretch: rate must be positive, got ${rate}`);
  const [, samples] = checkBatch(wave, 'timeStretch');
  const length = Math.round(samples / rate);
  return tidy(() => {
    const window = hannWindow(nFft);
    // Zero padding at the ends, as librosa (>= 0.10) does: works for clips shorter than nFft / 2 too.
    const spectrum = stft(toDtype(wave, 'float32'), { nFft, hopLength: hop, window, center: true, padMode: 'constant', onesided: true });
    const [batch, bins, frames] = spectrum.shape;
    // Two silent frames past the end give the last steps a right neighbour.
    const padded = pad(spectrum, [0, 2]);
    const magnitude = complexAbs(padded);
    const phase = toDtype(call('aten::angle', '', [padded.handle]), 'float64');

    const steps = arange(0, frames, rate, { dtype: 'float64' });
    const whole = floor(steps);
    const left = toDtype(whole, 'int64');
    const right = left.add(1);
    const frac = toDtype(steps.sub(whole), 'float32');
    const leftMagnitude = indexSelect(magnitude, 2, left);
    const outMagnitude = leftMagnitude.add(indexSelect(magnitude, 2, right).sub(leftMagnitude).mul(frac));

    // Expected phase advance per hop of bin k, and the measured deviation from it wrapped to [-pi, pi].
    const expected = arange(0, bins, 1, { dtype: 'float64' })
      .mul((TWO_PI * hop) / nFft)
      .reshape([1, bins, 1]);
    const deviation = wrapPhase(
      indexSelect(phase, 2, right)
        .sub(indexSelect(phase, 2, left))
        .sub(expected),
    );
    // Each step's advance is reduced mod 2 pi: the running sum then stays below 2 pi per frame, far from float64's limits.
    const advance = wrapPhase(expected.add(deviation));
    // Output frame t has the first frame's phase plus the advances of steps 0..t-1 (an exclusive cumsum).
    const start = phase.narrow(2, 0, 1);
    const accumulated = start.add(cumsum(advance, 2).sub(advance));
    const real = outMagnitude.mul(toDtype(cos(accumulated), 'float32'));
    const imag = outMagnitude.mul(toDtype(sin(accumulated), 'float32'));
    let stretched = viewAsComplex(stack([real, imag], -1).contiguous());
    // istft needs frames covering the whole requested length (the window overlap must not vanish); silent ones do.
    const needed = Math.floor(length / hop) + 1 - stretched.size(2);
    if (needed > 0) stretched = cat([stretched, viewAsComplex(zeros([batch, bins, needed, 2]))], 2);
    return istft(stretched, { nFft, hopLength: hop, window, center: true, length });
  });
}

/**
 * wave [batch, samples] with every frequency scaled by 2^(semitones/12), same length (float32). The stretch (rate
 * denominator/numerator) and the resampling (numerator -> denominator) share one fraction ~ 2^(semitones/12) of
 * small integers, which the polyphase resampler needs; sharing it brings the length back to within a sample (then
 * trimmed or zero-filled), and the pitch is off only by the fraction's error, <= 1.5e-5 (see rationalApproximation).
 * librosa instead stretches at exactly 2^(-semitones/12) and resamples by the same irrational ratio.
 */
export function pitchShift(wave: Tensor, semitones: number, opts: PhaseVocoderOptions = {}): Tensor {
  const [batch, samples] = checkBatch(wave, 'pitchShift');
  const { numerator, denominator } = rationalApproximation(2 ** (semitones / 12));
  const stretched = tidy(() => timeStretch(wave, denominator / numerator, opts).toFloat32Array());
  const stretchedLength = stretched.length / batch;
  const out = new Float32Array(batch * samples);
  for (let row = 0; row < batch; row++) {
    // The project's anti-aliased resampler, one row at a time: a few ms per 1-s clip, and no second resampler to test.
    const shifted = resample(stretched.subarray(row * stretchedLength, (row + 1) * stretchedLength), numerator, denominator);
    out.set(shifted.subarray(0, samples), row * samples); // round() may leave it one sample short: zero-filled
  }
  return tensor(out, [batch, samples]);
}

/**
 * The fraction closest to ratio whose smaller term is <= 300, and its relative error: 295/221 for 2^(5/12) (1.3e-6),
 * 98/55 for 2^(10/12) (1.2e-5); at most 1.5e-5 (0.03 cent) for every whole shift within two octaves. Exact fractions keep the polyphase resampler's table small (denominator phases).
 */
export function rationalApproximation(ratio: number): { numerator: number; denominator: number; error: number } {
  if (!(ratio > 0 && Number.isFinite(ratio))) throw new RangeError(`rationalApproximation: ratio must be positive, got ${ratio}`);
  if (ratio < 1) {
    // Approximate the reciprocal so the small term, not the large one, is the bounded one (same precision both ways).
    const { numerator, denominator } = rationalApproximation(1 / ratio);
    return { numerator: denominator, denominator: numerator, error: Math.abs(denominator / numerator - ratio) / ratio };
  }
  let best = { numerator: 1, denominator: 1, error: Math.abs(1 - ratio) / ratio };
  for (let denominator = 1; denominator <= MAX_SMALLER_TERM; denominator++) {
    const numerator = Math.round(ratio * denominator);
    const error = Math.abs(numerator / denominator - ratio) / ratio;
    if (error < best.error) best = { numerator, denominator, error };
  }
  return best;
}

function wrapPhase(x: Tensor): Tensor {
  return x.sub(round(x.div(TWO_PI)).mul(TWO_PI));
}

function checkBatch(wave: Tensor, name: string): [number, number] {
  if (wave.ndim !== 2) throw new RangeError(`${name}: expected a [batch, samples] tensor, got shape [${wave.shape.join(', ')}]`);
  return wave.shape as [number, number];
}
