import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { brownNoise, generateNoise, humNoise, mixAtSnr, noiseKinds, pinkNoise, rms, whiteNoise } from '../audio/noise.ts';
import { createRng, deriveSeed, hashString } from './rng.ts';
import { SCD10_WORDS, SCD30_WORDS, wordSet } from './words.ts';

describe('createRng', () => {
  it('is deterministic by seed and differs between seeds', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const xs = Array.from({ length: 100 }, () => a.next());
    assert.deepEqual(
      xs,
      Array.from({ length: 100 }, () => b.next()),
    );
    assert.notDeepEqual(
      xs,
      Array.from({ length: 100 }, () => c.next()),
    );
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    assert.deepEqual(createRng('words').next(), createRng('words').next());
  });

  it('int, uniform, normal and shuffle have the right ranges and moments', () => {
    const rng = createRng(7);
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 20000; i++) counts[rng.int(10)]++;
    assert.ok(
      counts.every((c) => c > 1800 && c < 2200),
      `${counts}`,
    );
    let sum = 0;
    let sumSq = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const z = rng.normal();
      sum += z;
      sumSq += z * z;
    }
    assert.ok(Math.abs(sum / n) < 0.03);
    assert.ok(Math.abs(sumSq / n - 1) < 0.04);
    const u = rng.uniform(-3, -2);
    assert.ok(u >= -3 && u < -2);
    const items = Array.from({ length: 50 }, (_, i) => i);
    const shuffled = rng.shuffle([...items]);
    assert.notDeepEqual(shuffled, items);
    assert.deepEqual(
      [...shuffled].sort((x, y) => x - y),
      items,
    );
    assert.throws(() => rng.int(0), /positive integer/);
  });

  it('derives independent seeds from labels', () => {
    assert.equal(deriveSeed(1, 'train', 3), deriveSeed(1, 'train', 3));
    assert.notEqual(deriveSeed(1, 'train', 3), deriveSeed(1, 'test', 3));
    assert.notEqual(deriveSeed(1, 'train'), deriveSeed(2, 'train'));
    assert.equal(hashString('abc'), hashString('abc'));
  });
});

/** Power in [lo, hi) Hz by a plain DFT over a few bins (enough to compare slopes). */
function bandPower(x: Float32Array, sampleRate: number, lo: number, hi: number): number {
  const n = 4096;
  let power = 0;
  let bins = 0;
  for (let k = Math.ceil((lo * n) / sampleRate); k < (hi * n) / sampleRate; k += 2) {
    let re = 0;
    let im = 0;
    for (let i = 0; i < n; i++) {
      const a = (2 * Math.PI * k * i) / n;
      re += x[i] * Math.cos(a);
      im -= x[i] * Math.sin(a);
    }
    power += re * re + im * im;
    bins++;
  }
  return power / bins;
}

describe('noise', () => {
  it('is deterministic by seed, at the requested RMS, for every kind', () => {
    for (const kind of noiseKinds) {
      const a = generateNoise(kind, 8000, 16000, createRng(5), { rms: 0.05 });
      const b = generateNoise(kind, 8000, 16000, createRng(5), { rms: 0.05 });
      const c = generateNoise(kind, 8000, 16000, createRng(6), { rms: 0.05 });
      assert.deepEqual(a, b, kind);
      assert.notDeepEqual(a, c, kind);
      assert.ok(Math.abs(rms(a) - 0.05) < 1e-4, kind);
    }
  });

  it('has the expected spectral tilt: white flat, pink -3 dB/octave, brown -6 dB/octave', () => {
    const sr = 16000;
    // Power per bin in 250-500 Hz versus 2000-4000 Hz: three octaves apart.
    const tilt = (x: Float32Array) => 10 * Math.log10(bandPower(x, sr, 2000, 4000) / bandPower(x, sr, 250, 500));
    const white = tilt(whiteNoise(4096, createRng(1)));
    const pink = tilt(pinkNoise(4096, createRng(1)));
    const brown = tilt(brownNoise(4096, createRng(1)));
    assert.ok(Math.abs(white) < 3, `white ${white.toFixed(1)} dB`);
    assert.ok(pink < -5 && pink > -13, `pink ${pink.toFixed(1)} dB`);
    assert.ok(brown < -14, `brown ${brown.toFixed(1)} dB`);
  });

  it('hum sits at the mains frequency', () => {
    const hum = humNoise(4096, 16000, createRng(2), { frequency: 60 });
    const at60 = bandPower(hum, 16000, 58, 62);
    const at1000 = bandPower(hum, 16000, 1000, 1100);
    assert.ok(at60 > 1000 * at1000);
  });

  it('mixAtSnr sets the ratio of signal to added noise', () => {
    const signal = whiteNoise(16000, createRng(3), { rms: 0.2 });
    const noise = pinkNoise(16000, createRng(4), { rms: 0.7 });
    const mixed = mixAtSnr(signal, noise, 12);
    const added = mixed.map((v, i) => v - signal[i]);
    assert.ok(Math.abs(20 * Math.log10(rms(signal) / rms(added)) - 12) < 0.01);
  });
});

describe('word sets', () => {
  it('SCD-10 is in the paper order with up at index 2; SCD-30 has 30 words including all of SCD-10', () => {
    assert.equal(SCD10_WORDS.length, 10);
    assert.equal(SCD10_WORDS[2], 'up');
    assert.equal(SCD30_WORDS.length, 30);
    assert.equal(new Set(SCD30_WORDS).size, 30);
    for (const w of SCD10_WORDS) assert.ok((SCD30_WORDS as readonly string[]).includes(w));
    assert.deepEqual([...SCD30_WORDS], [...SCD30_WORDS].sort());
    assert.equal(wordSet('scd10'), SCD10_WORDS);
  });
});
