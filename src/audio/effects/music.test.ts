import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RandomSource } from '../noise.ts';
import { musicClip, musicPool } from './music.ts';

/** mulberry32, as src/data/rng.ts uses (src/audio may not import src/data). */
function seeded(seed: number): RandomSource {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, normal: () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()) };
}

const rmsDb = (x: Float32Array) => 10 * Math.log10(x.reduce((sum, v) => sum + v * v, 0) / x.length);
const peakOf = (x: Float32Array) => x.reduce((peak, v) => Math.max(peak, Math.abs(v)), 0);

/** Magnitude at f over [from, to) samples by a Hann-windowed one-bin DFT. */
function magnitudeAt(x: Float32Array, sampleRate: number, f: number, from: number, to: number): number {
  let re = 0;
  let im = 0;
  for (let n = from; n < to; n++) {
    const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * (n - from)) / (to - from));
    re += w * x[n] * Math.cos((2 * Math.PI * f * n) / sampleRate);
    im -= w * x[n] * Math.sin((2 * Math.PI * f * n) / sampleRate);
  }
  return Math.hypot(re, im);
}

describe('musicClip', () => {
  it('is deterministic for a seed and differs between seeds', () => {
    const a = musicClip(seeded(7));
    assert.deepEqual(musicClip(seeded(7)), a);
    const b = musicClip(seeded(8));
    assert.notDeepEqual(b.samples, a.samples);
    assert.equal(a.samples.length, 16000);
    assert.equal(a.sampleRate, 16000);
  });

  it('hits the asked RMS and never leaves [-1, 1], also at -7 dBFS where the limiter must work', () => {
    let limited = 0;
    for (let seed = 1; seed <= 12; seed++) {
      for (const level of [-18, -12, -7]) {
        const { samples } = musicClip(seeded(seed), { rmsDb: level });
        assert.ok(Math.abs(rmsDb(samples) - level) < 0.01, `seed ${seed}: ${rmsDb(samples).toFixed(3)} dBFS, asked ${level}`);
        assert.ok(peakOf(samples) <= 0.99, `seed ${seed}: peak ${peakOf(samples)}`);
        if (level === -7 && peakOf(samples) > 0.95) limited++;
      }
    }
    assert.ok(limited > 0, 'no clip at -7 dBFS needed the limiter: the test does not reach it');
  });

  it('notes lie in MIDI 48..84 on equal temperament, and follow the options', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const { notes } = musicClip(seeded(seed), { minNotes: 2, maxNotes: 4 });
      const onsets = new Set(notes.map((n) => n.onset));
      assert.ok(onsets.size >= 2 && onsets.size <= 4, `seed ${seed}: ${onsets.size} note onsets`);
      for (const note of notes) {
        assert.ok(note.midi >= 48 && note.midi <= 84, `midi ${note.midi}`);
        assert.ok(Math.abs(note.frequency - 440 * 2 ** ((note.midi - 69) / 12)) < 1e-9);
        assert.ok(note.onset >= 0 && note.onset + note.duration <= 1 + 1e-9);
      }
    }
    const chords = musicClip(seeded(3), { chordProbability: 1 }).notes.filter((n) => n.onset === 0);
    assert.equal(chords.length, 3);
  });

  it('its energy sits at the notes: the strongest frequency of each note is one of its partials', () => {
    for (let seed = 1; seed <= 6; seed++) {
      const clip = musicClip(seeded(seed), { chordProbability: 0, percussionProbability: 1 });
      for (const note of clip.notes) {
        const from = Math.round(note.onset * clip.sampleRate);
        const to = Math.round((note.onset + note.duration) * clip.sampleRate);
        if (to - from < 1600) continue; // a note under 100 ms is too short to resolve
        // Scan 100 Hz..6 kHz in quarter-semitone steps: the loudest point must be on a partial of the note.
        let best = 0;
        let bestF = 0;
        for (let m = 12 * Math.log2(100 / 440) + 69; m < 12 * Math.log2(6000 / 440) + 69; m += 0.25) {
          const f = 440 * 2 ** ((m - 69) / 12);
          const magnitude = magnitudeAt(clip.samples, clip.sampleRate, f, from, to);
          if (magnitude > best) [best, bestF] = [magnitude, f];
        }
        const harmonic = bestF / note.frequency;
        const off = Math.abs(harmonic - Math.round(harmonic)) / harmonic; // relative mistuning from the nearest partial
        assert.ok(
          Math.round(harmonic) >= 1 && Math.round(harmonic) <= note.partials && off < 0.02,
          `seed ${seed} note ${note.midi}: peak at ${bestF.toFixed(1)} Hz`,
        );
      }
    }
  });
});

describe('musicPool', () => {
  it('draws count clips from one source, levels spread over the pool range -18..-7 dBFS', () => {
    const pool = musicPool(8, seeded(11));
    assert.equal(pool.length, 8);
    const levels = pool.map((clip) => rmsDb(clip.samples));
    for (const level of levels) assert.ok(level >= -18.01 && level <= -6.99, `${level} dBFS`);
    assert.ok(Math.max(...levels) - Math.min(...levels) > 3, 'levels do not vary');
    assert.deepEqual(musicPool(8, seeded(11)), pool);
    assert.notDeepEqual(pool[0].samples, pool[1].samples);
    const fixed = musicPool(2, seeded(11), { rmsDbRange: [-10, -10] });
    for (const clip of fixed) assert.ok(Math.abs(rmsDb(clip.samples) + 10) < 0.01);
  });
});
