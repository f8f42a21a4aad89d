// Mel filterbanks and DCT matrices as plain row-major Float32Arrays, computed in float64 from the
// formulas of torchaudio 0.13 (`melscale_fbanks`, `create_dct`) and librosa (`filters.mel`,
// scipy's orthonormal DCT-II). The front-ends turn them into persistent tensors once per config.

export type MelScale = 'htk' | 'slaney';

/** Hz -> mel. HTK: 2595 log10(1 + f/700). Slaney: linear below 1 kHz (3 mels per 200 Hz), log above. */
export function hzToMel(hz: number, scale: MelScale = 'htk'): number {
  if (scale === 'htk') return 2595 * Math.log10(1 + hz / 700);
  const linearStep = 200 / 3;
  const minLogHz = 1000;
  const minLogMel = minLogHz / linearStep;
  const logStep = Math.log(6.4) / 27;
  return hz >= minLogHz ? minLogMel + Math.log(hz / minLogHz) / logStep : hz / linearStep;
}

/** mel -> Hz, the inverse of hzToMel. */
export function melToHz(mel: number, scale: MelScale = 'htk'): number {
  if (scale === 'htk') return 700 * (10 ** (mel / 2595) - 1);
  const linearStep = 200 / 3;
  const minLogHz = 1000;
  const minLogMel = minLogHz / linearStep;
  const logStep = Math.log(6.4) / 27;
  return mel >= minLogMel ? minLogHz * Math.exp(logStep * (mel - minLogMel)) : linearStep * mel;
}

export interface MelFilterbankOptions {
  sampleRate: number;
  nFft: number;
  nMels: number;
  /** lowest band edge in Hz (default 0) */
  fMin?: number;
  /** highest band edge in Hz (default sampleRate / 2) */
  fMax?: number;
  /** 'htk' is torchaudio's default, 'slaney' librosa's (default 'htk') */
  scale?: MelScale;
  /** 'slaney' divides each triangle by its width in Hz / 2 (librosa's default); null keeps peak 1 (torchaudio's) */
  norm?: 'slaney' | null;
  /**
   * Frequencies of the FFT bins. 'torchaudio' is linspace(0, floor(sr/2), nFft/2+1), which is what
   * torchaudio uses and is off by a fraction of a bin for odd nFft (e.g. 1103 at 44.1 kHz); 'fft' is
   * the true k * sr / nFft (librosa). Both agree for even nFft. Default 'torchaudio'.
   */
  binFrequencies?: 'torchaudio' | 'fft';
}

/**
 * Triangular mel filterbank as a row-major [nFft/2+1, nMels] matrix (frequency x mel), so a power
 * spectrum [.., freq] times it gives [.., mel]. Filters with no FFT bin inside stay all zero, as in
 * torchaudio and librosa (both only warn).
 */
export function melFilterbank(o: MelFilterbankOptions): Float32Array {
  const { sampleRate, nFft, nMels } = o;
  const scale = o.scale ?? 'htk';
  const fMin = o.fMin ?? 0;
  const fMax = o.fMax ?? sampleRate / 2;
  if (!(nMels > 0 && nFft > 0 && sampleRate > 0))
    throw new RangeError(`melFilterbank: sampleRate, nFft and nMels must be positive (got ${sampleRate}, ${nFft}, ${nMels})`);
  if (!(fMin >= 0 && fMin < fMax)) throw new RangeError(`melFilterbank: need 0 <= fMin < fMax (got ${fMin}, ${fMax})`);
  const nFreqs = Math.floor(nFft / 2) + 1;
  const binHz = new Float64Array(nFreqs);
  const top = o.binFrequencies === 'fft' ? (sampleRate * (nFreqs - 1)) / nFft : Math.floor(sampleRate / 2);
  for (let k = 0; k < nFreqs; k++) binHz[k] = nFreqs === 1 ? 0 : (top * k) / (nFreqs - 1);
  // nMels + 2 band edges evenly spaced in mel.
  const melMin = hzToMel(fMin, scale);
  const melMax = hzToMel(fMax, scale);
  const edges = new Float64Array(nMels + 2);
  for (let i = 0; i < nMels + 2; i++) edges[i] = melToHz(melMin + ((melMax - melMin) * i) / (nMels + 1), scale);
  const fb = new Float32Array(nFreqs * nMels);
  for (let m = 0; m < nMels; m++) {
    const [lo, centre, hi] = [edges[m], edges[m + 1], edges[m + 2]];
    const gain = o.norm === 'slaney' ? 2 / (hi - lo) : 1;
    for (let k = 0; k < nFreqs; k++) {
      const rising = (binHz[k] - lo) / (centre - lo);
      const falling = (hi - binHz[k]) / (hi - centre);
      const w = Math.max(0, Math.min(rising, falling));
      fb[k * nMels + m] = w * gain;
    }
  }
  return fb;
}

/**
 * Orthonormal DCT-II as a row-major [nMels, nMfcc] matrix (torchaudio's `create_dct(nMfcc, nMels,
 * 'ortho')`, equal to scipy's `dct(type=2, norm='ortho')` that librosa uses): right-multiplying
 * [.., nMels] log-mel rows gives [.., nMfcc] coefficients.
 */
export function dctMatrix(nMfcc: number, nMels: number): Float32Array {
  if (!(nMfcc > 0 && nMfcc <= nMels)) throw new RangeError(`dctMatrix: need 0 < nMfcc <= nMels (got ${nMfcc}, ${nMels})`);
  const out = new Float32Array(nMels * nMfcc);
  for (let k = 0; k < nMfcc; k++) {
    const scale = Math.sqrt((k === 0 ? 1 : 2) / nMels);
    for (let m = 0; m < nMels; m++) out[m * nMfcc + k] = scale * Math.cos((Math.PI / nMels) * (m + 0.5) * k);
  }
  return out;
}
