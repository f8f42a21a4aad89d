// Seeded noise generators (white, pink, brown, mains hum) and mixing at a given SNR. They draw from a caller's
// random source so one seed fixes the output; src/data/rng.ts's createRng(seed) is one such source (audio sits
// above data in the layer order, so the interface is restated here rather than imported).

/** The part of a seeded PRNG that noise needs; createRng(seed) from src/data/rng.ts satisfies it. */
export interface RandomSource {
  /** Uniform in [0, 1). */
  next(): number;
  /** Standard normal. */
  normal(): number;
}

export type NoiseKind = 'white' | 'pink' | 'brown' | 'hum50' | 'hum60';

export const noiseKinds: readonly NoiseKind[] = ['white', 'pink', 'brown', 'hum50', 'hum60'];

export interface NoiseOptions {
  /** RMS level of the result (0.1 is -20 dBFS). */
  rms?: number;
}

export interface HumOptions extends NoiseOptions {
  /** Mains frequency: 50 Hz (Europe, Asia) or 60 Hz (Americas). */
  frequency?: number;
  /** Harmonics including the fundamental; rectifiers and transformers make real hum rich in them. */
  harmonics?: number;
  /** Broadband floor under the hum, relative to its RMS, in dB. */
  floorDb?: number;
}

const DEFAULT_RMS = 0.1;

/** Gaussian white noise. */
export function whiteNoise(length: number, random: RandomSource, opts: NoiseOptions = {}): Float32Array {
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = random.normal();
  return normalizeRms(out, opts.rms ?? DEFAULT_RMS);
}

/** 1/f noise: white noise through Paul Kellett's refined pinking filter (within 0.05 dB of -3 dB/octave above 9 Hz at 44.1 kHz). */
export function pinkNoise(length: number, random: RandomSource, opts: NoiseOptions = {}): Float32Array {
  const out = new Float32Array(length);
  let b0 = 0;
  let b1 = 0;
  let b2 = 0;
  let b3 = 0;
  let b4 = 0;
  let b5 = 0;
  let b6 = 0;
  for (let i = 0; i < length; i++) {
    const white = random.normal();
    b0 = 0.99886 * b0 + white * 0.0555179;
    b1 = 0.99332 * b1 + white * 0.0750759;
    b2 = 0.969 * b2 + white * 0.153852;
    b3 = 0.8665 * b3 + white * 0.3104856;
    b4 = 0.55 * b4 + white * 0.5329522;
    b5 = -0.7616 * b5 - white * 0.016898;
    out[i] = b0 + b1 + b2 + b3 + b4 + b5 + b6 + white * 0.5362;
    b6 = white * 0.115926;
  }
  return normalizeRms(removeMean(out), opts.rms ?? DEFAULT_RMS);
}

/** 1/f^2 (Brownian) noise: leaky integration of white noise; the leak keeps it from wandering off. */
export function brownNoise(length: number, random: RandomSource, opts: NoiseOptions = {}): Float32Array {
  const out = new Float32Array(length);
  let level = 0;
  for (let i = 0; i < length; i++) {
    level = 0.998 * level + random.normal();
    out[i] = level;
  }
  return normalizeRms(removeMean(out), opts.rms ?? DEFAULT_RMS);
}

/** Mains hum: a fundamental with decaying harmonics at random phases, over a faint white floor. */
export function humNoise(length: number, sampleRate: number, random: RandomSource, opts: HumOptions = {}): Float32Array {
  const frequency = opts.frequency ?? 50;
  const harmonics = opts.harmonics ?? 6;
  const floorDb = opts.floorDb ?? -30;
  const out = new Float32Array(length);
  let power = 0;
  for (let h = 1; h <= harmonics && h * frequency < sampleRate / 2; h++) {
    // Odd harmonics dominate in transformer hum; even ones are weaker.
    const amplitude = (h % 2 === 1 ? 1 : 0.4) / h;
    const phase = 2 * Math.PI * random.next();
    const step = (2 * Math.PI * h * frequency) / sampleRate;
    for (let i = 0; i < length; i++) out[i] += amplitude * Math.sin(step * i + phase);
    power += (amplitude * amplitude) / 2;
  }
  const floor = Math.sqrt(power) * 10 ** (floorDb / 20);
  for (let i = 0; i < length; i++) out[i] += floor * random.normal();
  return normalizeRms(out, opts.rms ?? DEFAULT_RMS);
}

/** One of the named kinds, for generators that pick a kind by name. */
export function generateNoise(kind: NoiseKind, length: number, sampleRate: number, random: RandomSource, opts: NoiseOptions = {}): Float32Array {
  switch (kind) {
    case 'white':
      return whiteNoise(length, random, opts);
    case 'pink':
      return pinkNoise(length, random, opts);
    case 'brown':
      return brownNoise(length, random, opts);
    case 'hum50':
      return humNoise(length, sampleRate, random, { ...opts, frequency: 50 });
    case 'hum60':
      return humNoise(length, sampleRate, random, { ...opts, frequency: 60 });
    default:
      throw new Error(`unknown noise kind '${kind as string}' (known: ${noiseKinds.join(', ')})`);
  }
}

/** Root mean square over [from, to). */
export function rms(samples: Float32Array, from = 0, to = samples.length): number {
  if (to <= from) return 0;
  let sum = 0;
  for (let i = from; i < to; i++) sum += samples[i] * samples[i];
  return Math.sqrt(sum / (to - from));
}

export interface MixOptions {
  /** RMS the SNR refers to; defaults to the signal's RMS over its whole length (pass the speech-only RMS for clips with silence). */
  signalRms?: number;
}

/** signal + noise scaled so that 20 log10(signalRms / noiseRms) = snrDb. `noise` must be at least as long as `signal`. */
export function mixAtSnr(signal: Float32Array, noise: Float32Array, snrDb: number, opts: MixOptions = {}): Float32Array {
  if (noise.length < signal.length) throw new RangeError(`mixAtSnr: noise has ${noise.length} samples, signal ${signal.length}`);
  const signalRms = opts.signalRms ?? rms(signal);
  const noiseRms = rms(noise, 0, signal.length);
  const out = signal.slice();
  if (noiseRms === 0 || signalRms === 0) return out;
  const scale = signalRms / (noiseRms * 10 ** (snrDb / 20));
  for (let i = 0; i < out.length; i++) out[i] += scale * noise[i];
  return out;
}

function removeMean(samples: Float32Array): Float32Array {
  if (samples.length === 0) return samples;
  let mean = 0;
  for (let i = 0; i < samples.length; i++) mean += samples[i];
  mean /= samples.length;
  for (let i = 0; i < samples.length; i++) samples[i] -= mean;
  return samples;
}

function normalizeRms(samples: Float32Array, target: number): Float32Array {
  const current = rms(samples);
  if (current === 0) return samples;
  const scale = target / current;
  for (let i = 0; i < samples.length; i++) samples[i] *= scale;
  return samples;
}
