// Time-frequency pictures of example clips: a model's input features as they are ([frames, coefficients]),
// or, for a waveform, a log-magnitude STFT spectrogram, drawn as a colour-mapped PNG that a figure places
// on its axes. Colours come from Vega's own schemes so the image and the figure's legend agree.
import * as vega from 'vega';
import { fft } from '../audio/fft.ts';
import { encodePng } from './png.ts';

/** A picture to draw: `values[t * bins + b]`, time on x, bin on y (bin 0 at the bottom). */
export interface Grid {
  frames: number;
  bins: number;
  values: Float32Array;
  /** seconds from one frame to the next */
  secondsPerFrame: number;
  /** the y axis: what a bin is */
  binTitle: string;
  /** the y axis range in its own unit (bins, or kHz for an STFT) */
  yMax: number;
  /** the legend: what a value is */
  valueTitle: string;
}

export function featureGrid(values: Float32Array, frames: number, bins: number, seconds: number, frontEnd = ''): Grid {
  const binTitle = frontEnd.startsWith('logmel') ? 'mel bin' : 'MFCC coefficient';
  const valueTitle = frontEnd.startsWith('logmel') ? 'log-mel (dB)' : 'MFCC value';
  return { frames, bins, values, secondsPerFrame: seconds / frames, binTitle, yMax: bins, valueTitle };
}

/** Log-magnitude STFT (Hann window, 75% overlap) in dB; bins up to the Nyquist frequency. */
export function stftGrid(samples: Float32Array, sampleRate: number, nFft = sampleRate > 30000 ? 1024 : 512): Grid {
  const hop = nFft / 4;
  const frames = Math.max(1, 1 + Math.floor((samples.length - nFft) / hop));
  const bins = nFft / 2 + 1;
  const window = Float64Array.from({ length: nFft }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / nFft));
  const values = new Float32Array(frames * bins);
  const re = new Float64Array(nFft);
  const im = new Float64Array(nFft);
  for (let t = 0; t < frames; t++) {
    for (let i = 0; i < nFft; i++) {
      re[i] = (samples[t * hop + i] ?? 0) * window[i];
      im[i] = 0;
    }
    fft(re, im);
    for (let b = 0; b < bins; b++) values[t * bins + b] = 10 * Math.log10(re[b] * re[b] + im[b] * im[b] + 1e-10);
  }
  return { frames, bins, values, secondsPerFrame: hop / sampleRate, binTitle: 'frequency (kHz)', yMax: sampleRate / 2000, valueTitle: 'power (dB)' };
}

/** The q-quantile of the finite values (q in [0, 1]). */
export function quantile(values: ArrayLike<number>, q: number): number {
  const sorted = Array.from(values)
    .filter(Number.isFinite)
    .sort((a, b) => a - b);
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];
}

/**
 * Colour range of a picture: its 5th to 99.5th percentile, so that a few extreme cells (MFCC coefficient
 * 0, which is 1 row in 40; a BadNets patch) do not wash out the rest. Cells beyond are drawn at the ends.
 */
export function robustRange(values: ArrayLike<number>): [number, number] {
  const lo = quantile(values, 0.05);
  const hi = quantile(values, 0.995);
  return hi > lo ? [lo, hi] : [lo - 1, lo + 1];
}

/**
 * A symmetric range for a difference picture: ±(95th percentile of |value| over the cells the trigger
 * changed), so a trigger that touches few cells (BadNets' patch) keeps its true size on the legend, and
 * one whose largest change is in a single row (MFCC coefficient 0, the energy) does not fade the rest.
 */
export function symmetricRange(values: ArrayLike<number>): [number, number] {
  const changed = Array.from(values, Math.abs).filter((v) => v > 1e-9);
  const m = quantile(changed, 0.95);
  return m > 0 ? [-m, m] : [-1, 1];
}

export function difference(a: Grid, b: Grid): Grid {
  const frames = Math.min(a.frames, b.frames);
  const values = new Float32Array(frames * a.bins);
  for (let i = 0; i < values.length; i++) values[i] = b.values[i] - a.values[i];
  return { ...a, frames, values, valueTitle: `Δ ${a.valueTitle}` };
}

function colourTable(scheme: string): Uint8Array {
  const interpolate = (vega as unknown as { scheme(name: string): ((t: number) => string) | undefined }).scheme(scheme);
  if (!interpolate) throw new Error(`unknown colour scheme '${scheme}'`);
  const table = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const colour = interpolate(i / 255);
    const rgb = /rgb\((\d+),\s*(\d+),\s*(\d+)\)/.exec(colour) ?? /#(..)(..)(..)/.exec(colour);
    const parse = (s: string) => (colour.startsWith('#') ? Number.parseInt(s, 16) : Number(s));
    table.set(rgb ? [parse(rgb[1]), parse(rgb[2]), parse(rgb[3])] : [0, 0, 0], 3 * i);
  }
  return table;
}

/** The grid as a PNG (one pixel per cell, high bins at the top), values clamped to `range`. */
export function gridPng(grid: Grid, range: [number, number], scheme = 'viridis'): Uint8Array {
  const table = colourTable(scheme);
  const [lo, hi] = range;
  const rgb = new Uint8Array(grid.frames * grid.bins * 3);
  for (let t = 0; t < grid.frames; t++) {
    for (let b = 0; b < grid.bins; b++) {
      const v = grid.values[t * grid.bins + b];
      const k = Number.isFinite(v) ? Math.round((255 * (Math.min(hi, Math.max(lo, v)) - lo)) / (hi - lo)) : 0;
      const at = 3 * ((grid.bins - 1 - b) * grid.frames + t);
      rgb[at] = table[3 * k];
      rgb[at + 1] = table[3 * k + 1];
      rgb[at + 2] = table[3 * k + 2];
    }
  }
  return encodePng(grid.frames, grid.bins, rgb);
}
