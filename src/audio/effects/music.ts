// Short synthetic music clips: stand-ins for DABA's natural-sound trigger pool, which was 60 one-second music
// snippets at 16 kHz (specs/attacks.md §4; the original pool could not be obtained). A clip is a few notes of a random
// melody in a random key and scale, each a harmonic tone with decaying partials, sometimes with a chord and a
// percussive noise tick. A seed fixes everything.
import type { RandomSource } from '../noise.ts';

export interface MusicOptions {
  seconds?: number;
  sampleRate?: number;
  /** RMS level of the clip in dBFS (20 log10 RMS). */
  rmsDb?: number;
  /** Notes of the melody: drawn uniformly from [min, max]. */
  minNotes?: number;
  maxNotes?: number;
  /** MIDI range of the melody (and chord) notes. */
  lowestMidi?: number;
  highestMidi?: number;
  /** Chance that the first note is a triad. */
  chordProbability?: number;
  /** Chance that each note onset also has a noise tick. */
  percussionProbability?: number;
}

// One 1-s clip at 16 kHz as in the DABA pool (spec §4); -12 dBFS lies mid-way in the pool's measured -7..-18 dBFS.
const DEFAULTS: Required<MusicOptions> = {
  seconds: 1,
  sampleRate: 16000,
  rmsDb: -12,
  minNotes: 3,
  maxNotes: 6,
  lowestMidi: 48,
  highestMidi: 84,
  chordProbability: 0.3,
  percussionProbability: 0.5,
};

/** One sounding note; the frequencies of its partials are harmonic (h * frequency). */
export interface MusicNote {
  midi: number;
  /** Fundamental in Hz (equal temperament, A4 = MIDI 69 = 440 Hz). */
  frequency: number;
  /** Start and length in seconds. */
  onset: number;
  duration: number;
  /** Partials synthesised: 1..partials (those below 0.45 * sampleRate). */
  partials: number;
}

export interface MusicClip {
  samples: Float32Array;
  sampleRate: number;
  notes: MusicNote[];
}

/** Semitone steps of the scales a melody is drawn from. */
const SCALES: readonly (readonly number[])[] = [
  [0, 2, 4, 5, 7, 9, 11], // major
  [0, 2, 3, 5, 7, 8, 10], // natural minor
  [0, 2, 4, 7, 9], // major pentatonic
  [0, 3, 5, 7, 10], // minor pentatonic
];
/** Loudest sample allowed; louder clips go through a soft limiter, as mastered music does. */
const PEAK_CEILING = 0.99;

/** A seeded music-like clip, normalised to opts.rmsDb, never beyond +-PEAK_CEILING. */
export function musicClip(random: RandomSource, opts: MusicOptions = {}): MusicClip {
  const o = { ...DEFAULTS, ...opts };
  if (!(o.lowestMidi <= o.highestMidi)) throw new RangeError(`musicClip: lowestMidi ${o.lowestMidi} is above highestMidi ${o.highestMidi}`);
  if (!(o.minNotes >= 1 && o.minNotes <= o.maxNotes)) throw new RangeError(`musicClip: need 1 <= minNotes <= maxNotes, got ${o.minNotes}..${o.maxNotes}`);
  const length = Math.round(o.seconds * o.sampleRate);
  const out = new Float64Array(length);
  const pitches = scalePitches(random, o.lowestMidi, o.highestMidi);
  const count = o.minNotes + Math.floor(random.next() * (o.maxNotes - o.minNotes + 1));
  const onsets = noteOnsets(random, count, o.seconds);
  const notes: MusicNote[] = [];
  // Melodies move mostly by small steps: a random walk over the scale.
  let index = Math.floor(random.next() * pitches.length);
  const brightness = 1 + random.next(); // partial amplitudes fall as 1/h^brightness
  for (let i = 0; i < count; i++) {
    if (i > 0) index = Math.min(pitches.length - 1, Math.max(0, index + Math.round((random.next() - 0.5) * 6)));
    const onset = onsets[i];
    const duration = (i + 1 < count ? onsets[i + 1] : o.seconds) - onset;
    const chord = i === 0 && random.next() < o.chordProbability ? [0, 2, 4] : [0];
    for (const step of chord) {
      const midi = pitches[Math.min(pitches.length - 1, index + step)];
      const note = renderNote(out, o.sampleRate, random, midi, onset, duration, brightness);
      notes.push(note);
    }
    if (random.next() < o.percussionProbability) renderTick(out, o.sampleRate, random, onset);
  }
  return { samples: levelTo(out, 10 ** (o.rmsDb / 20)), sampleRate: o.sampleRate, notes };
}

export interface MusicPoolOptions extends Omit<MusicOptions, 'rmsDb'> {
  /** Each clip's RMS in dBFS is drawn uniformly from [min, max]: the measured range of DABA's pool (spec §4). */
  rmsDbRange?: [number, number];
}

/** `count` clips drawn one after another from `random`, each at its own random level. */
export function musicPool(count: number, random: RandomSource, opts: MusicPoolOptions = {}): MusicClip[] {
  const [low, high] = opts.rmsDbRange ?? [-18, -7];
  const clips: MusicClip[] = [];
  for (let i = 0; i < count; i++) clips.push(musicClip(random, { ...opts, rmsDb: low + (high - low) * random.next() }));
  return clips;
}

/** MIDI notes of a random key and scale inside [lowest, highest], ascending. */
function scalePitches(random: RandomSource, lowest: number, highest: number): number[] {
  const scale = SCALES[Math.floor(random.next() * SCALES.length)];
  const tonic = Math.floor(random.next() * 12);
  const pitches: number[] = [];
  for (let midi = lowest; midi <= highest; midi++) if (scale.includes((((midi - tonic) % 12) + 12) % 12)) pitches.push(midi);
  return pitches.length > 0 ? pitches : [lowest];
}

/** Sorted onsets: the first at 0, the rest at jittered, roughly even divisions of the clip. */
function noteOnsets(random: RandomSource, count: number, seconds: number): number[] {
  const slot = seconds / count;
  const onsets = [0];
  for (let i = 1; i < count; i++) onsets.push((i + 0.4 * (random.next() - 0.5)) * slot);
  return onsets;
}

function renderNote(out: Float64Array, sampleRate: number, random: RandomSource, midi: number, onset: number, duration: number, brightness: number): MusicNote {
  const frequency = 440 * 2 ** ((midi - 69) / 12);
  const partials = Math.max(1, Math.min(8, Math.floor((0.45 * sampleRate) / frequency)));
  const start = Math.round(onset * sampleRate);
  const end = Math.min(out.length, Math.round((onset + duration) * sampleRate));
  const attack = Math.max(1, Math.round((0.005 + 0.02 * random.next()) * sampleRate));
  const release = Math.max(1, Math.round(0.01 * sampleRate)); // a 10 ms fade at the end: no click
  const decaySeconds = 0.15 + 0.6 * random.next();
  for (let h = 1; h <= partials; h++) {
    const amplitude = 1 / h ** brightness;
    const phase = 2 * Math.PI * random.next();
    // Higher partials die away sooner, as in plucked and struck strings.
    const decay = 1 / (sampleRate * (decaySeconds / Math.sqrt(h)));
    const step = (2 * Math.PI * h * frequency) / sampleRate;
    for (let n = start; n < end; n++) {
      const t = n - start;
      const envelope = Math.min(1, t / attack, (end - n) / release) * Math.exp(-t * decay);
      out[n] += amplitude * envelope * Math.sin(phase + step * t);
    }
  }
  return { midi, frequency, onset, duration, partials };
}

/** A short decaying white-noise burst, well below the notes. */
function renderTick(out: Float64Array, sampleRate: number, random: RandomSource, onset: number): void {
  const start = Math.round(onset * sampleRate);
  const length = Math.round((0.02 + 0.02 * random.next()) * sampleRate);
  const level = 0.1 + 0.2 * random.next();
  for (let t = 0; t < length && start + t < out.length; t++) out[start + t] += level * Math.exp((-5 * t) / length) * random.normal();
}

/**
 * samples at RMS `target`: a plain gain if that keeps the peak under PEAK_CEILING, else the gain g that gives
 * rms(c tanh(g x / c)) = target (c the ceiling), found by bisection; the RMS is monotonic in g and bounded by c.
 */
function levelTo(samples: Float64Array, target: number): Float32Array {
  if (!(target > 0 && target < PEAK_CEILING)) throw new RangeError(`musicClip: RMS ${target} must lie in (0, ${PEAK_CEILING}) (below about -0.1 dBFS)`);
  const current = rmsOf(samples);
  if (current === 0) return new Float32Array(samples.length);
  let peak = 0;
  for (const v of samples) peak = Math.max(peak, Math.abs(v));
  const linear = target / current;
  if (peak * linear <= PEAK_CEILING) return Float32Array.from(samples, (v) => v * linear);
  const limited = (g: number) => samples.map((v) => PEAK_CEILING * Math.tanh((g * v) / PEAK_CEILING));
  let low = linear; // rms(limited(linear)) < target: tanh only lowers levels
  let high = 2 * linear;
  for (let doublings = 0; rmsOf(limited(high)) < target; doublings++) {
    // Only a clip that is mostly silence cannot reach the level: saturation caps each sample at the ceiling.
    if (doublings > 60) throw new RangeError(`musicClip: cannot reach RMS ${target} under the ${PEAK_CEILING} ceiling`);
    high *= 2;
  }
  for (let i = 0; i < 50; i++) {
    const mid = 0.5 * (low + high);
    if (rmsOf(limited(mid)) < target) low = mid;
    else high = mid;
  }
  return Float32Array.from(limited(0.5 * (low + high)));
}

function rmsOf(samples: Float64Array): number {
  let sum = 0;
  for (const v of samples) sum += v * v;
  return samples.length > 0 ? Math.sqrt(sum / samples.length) : 0;
}
