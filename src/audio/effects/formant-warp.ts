// The timbre transform of VSVC-DSP, the stand-in for VSVC's voice-conversion network (specs/attacks.md §7, "DSP
// substitute", step 1): per STFT frame, split |X| into a smooth spectral envelope (cepstral liftering) and the fine
// structure (the harmonics), stretch the envelope's frequency axis by alpha and put the fine structure back. Formants
// move by alpha; the harmonics, hence the pitch, stay where they were; the phase is kept.
import {
  arange,
  clamp,
  complexAbs,
  exp,
  floor,
  hannWindow,
  indexSelect,
  irfft,
  istft,
  log,
  rfft,
  stft,
  type Tensor,
  tensor,
  tidy,
  toDtype,
  transpose,
} from '../../torch/index.ts';
import { call } from '../../torch/ops/dispatch.ts';

export interface FormantWarpOptions {
  /** Quefrency coefficients kept for the envelope (c_0..c_{lifter-1} and their mirror images). */
  lifter?: number;
  windowMs?: number;
  hopMs?: number;
  /** FFT size; default the next power of two at or above the window (512 for 25 ms at 16 kHz). */
  nFft?: number;
  /** Added to |X| before the log, so silence and spectral nulls stay finite. */
  floor?: number;
}

// Spec §7: ~30 quefrency coefficients, 25 ms Hann windows, 10 ms hop.
const DEFAULTS = { lifter: 30, windowMs: 25, hopMs: 10, floor: 1e-8 };

/**
 * wave [batch, samples] at sampleRate with its spectral envelope warped, env'(f) = env(f / alpha): alpha 1.2 raises
 * the formants by 20% (male to female-like), 0.83 lowers them. Same shape out (float32).
 */
export function formantWarp(wave: Tensor, sampleRate: number, alpha: number, opts: FormantWarpOptions = {}): Tensor {
  if (wave.ndim !== 2) throw new RangeError(`formantWarp: expected a [batch, samples] tensor, got shape [${wave.shape.join(', ')}]`);
  if (!(alpha > 0 && Number.isFinite(alpha))) throw new RangeError(`formantWarp: alpha must be positive, got ${alpha}`);
  const lifter = opts.lifter ?? DEFAULTS.lifter;
  const winLength = Math.round(((opts.windowMs ?? DEFAULTS.windowMs) * sampleRate) / 1000);
  const hopLength = Math.round(((opts.hopMs ?? DEFAULTS.hopMs) * sampleRate) / 1000);
  const nFft = opts.nFft ?? 2 ** Math.ceil(Math.log2(winLength));
  if (nFft < winLength) throw new RangeError(`formantWarp: nFft ${nFft} is shorter than the ${winLength}-sample window`);
  if (!(lifter >= 1 && 2 * lifter <= nFft)) throw new RangeError(`formantWarp: lifter must be in [1, nFft/2], got ${lifter}`);
  const samples = wave.size(1);
  const bins = nFft / 2 + 1;
  return tidy(() => {
    const window = hannWindow(winLength); // stft centres it in the nFft frame
    const stftOptions = { nFft, hopLength, winLength, window, center: true };
    const spectrum = stft(toDtype(wave, 'float32'), { ...stftOptions, padMode: 'constant', onesided: true }); // [B, F, T]
    // Work on [B, T, F] so the FFTs over frequency run along the last dim.
    const logMagnitude = log(transpose(complexAbs(spectrum), 1, 2).add(opts.floor ?? DEFAULTS.floor));
    const envelope = cepstralEnvelope(logMagnitude, nFft, lifter);
    const warped = warpBins(envelope, bins, alpha);
    // |X'| = (|X| / env) * env' with the phase kept is X scaled by the real gain env' / env.
    const gainPerBin = transpose(exp(warped.sub(envelope)), 1, 2);
    return istft(spectrum.mul(gainPerBin), { ...stftOptions, length: samples });
  });
}

/** The log envelope: the real cepstrum of log|X| with quefrencies >= lifter zeroed, back on the frequency axis. */
function cepstralEnvelope(logMagnitude: Tensor, nFft: number, lifter: number): Tensor {
  const cepstrum = irfft(logMagnitude, nFft, -1); // real and even: log|X| is a real, symmetric spectrum
  const keep = new Float32Array(nFft);
  for (let q = 0; q < nFft; q++) keep[q] = q < lifter || q > nFft - lifter ? 1 : 0;
  const smooth = rfft(cepstrum.mul(tensor(keep)), nFft, -1);
  return call('aten::real', '', [smooth.handle]).contiguous(); // the imaginary part is zero up to rounding
}

/**
 * env'(k) = env(k / alpha) by linear interpolation along the bins, done on the log envelope (the cepstrum's own
 * domain; it keeps env' positive and interpolates between bins geometrically); above the top bin the top value is held.
 */
function warpBins(envelope: Tensor, bins: number, alpha: number): Tensor {
  const source = clamp(arange(0, bins, 1, { dtype: 'float64' }).div(alpha), 0, bins - 1);
  const left = clamp(floor(source), 0, bins - 2);
  const frac = toDtype(source.sub(left), 'float32');
  const leftIndex = toDtype(left, 'int64');
  const leftValue = indexSelect(envelope, 2, leftIndex);
  const rightValue = indexSelect(envelope, 2, leftIndex.add(1));
  return leftValue.add(rightValue.sub(leftValue).mul(frac));
}
