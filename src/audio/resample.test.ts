import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createResampler, resample } from './resample.ts';

function tone(frequency: number, sampleRate: number, seconds: number, amplitude = 0.5): Float32Array {
  const out = new Float32Array(Math.round(sampleRate * seconds));
  for (let i = 0; i < out.length; i++) out[i] = amplitude * Math.sin((2 * Math.PI * frequency * i) / sampleRate);
  return out;
}

/** Amplitude of the component at `frequency`, by a Hann-windowed single-bin DFT over the middle of the signal. */
function amplitudeAt(samples: Float32Array, sampleRate: number, frequency: number): number {
  const margin = Math.floor(samples.length / 8); // skip the edges, where the filter sees zeros
  const n = samples.length - 2 * margin;
  let re = 0;
  let im = 0;
  let windowSum = 0;
  for (let i = 0; i < n; i++) {
    const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (n - 1));
    const angle = (2 * Math.PI * frequency * (i + margin)) / sampleRate;
    re += w * samples[i + margin] * Math.cos(angle);
    im -= w * samples[i + margin] * Math.sin(angle);
    windowSum += w;
  }
  return (2 * Math.hypot(re, im)) / windowSum;
}

/** Largest amplitude over a grid of frequencies (to catch an alias wherever it lands). */
function peakAmplitude(samples: Float32Array, sampleRate: number): number {
  let peak = 0;
  for (let f = 50; f < sampleRate / 2; f += 25) peak = Math.max(peak, amplitudeAt(samples, sampleRate, f));
  return peak;
}

const db = (ratio: number) => 20 * Math.log10(ratio);

describe('resample', () => {
  const pairs: [number, number][] = [
    [22050, 16000],
    [16000, 22050],
    [16000, 44100],
    [44100, 16000],
    [44100, 22050],
    [22050, 44100],
    [48000, 16000],
  ];
  for (const [from, to] of pairs) {
    it(`${from} -> ${to}: a 1 kHz tone keeps its frequency and level`, () => {
      const input = tone(1000, from, 0.5);
      const output = resample(input, from, to);
      assert.equal(output.length, Math.round((input.length * to) / from));
      const level = amplitudeAt(output, to, 1000);
      assert.ok(Math.abs(db(level / 0.5)) < 0.05, `level changed by ${db(level / 0.5).toFixed(3)} dB`);
      // The energy is at 1 kHz, not beside it.
      assert.ok(amplitudeAt(output, to, 1100) < 0.005);
    });
  }

  it('keeps the level of a tone near the top of the passband (6 kHz, 22050 -> 16000)', () => {
    const level = amplitudeAt(resample(tone(6000, 22050, 0.5), 22050, 16000), 16000, 6000);
    assert.ok(Math.abs(db(level / 0.5)) < 0.5, `6 kHz changed by ${db(level / 0.5).toFixed(2)} dB`);
  });

  for (const [from, to, frequency] of [
    [22050, 16000, 9000],
    [22050, 16000, 8200],
    [44100, 16000, 12000],
    [44100, 16000, 20000],
    [44100, 22050, 15000],
  ]) {
    it(`${from} -> ${to}: a ${frequency} Hz tone above the new Nyquist is attenuated by > 40 dB`, () => {
      const output = resample(tone(frequency, from, 0.5), from, to);
      const attenuation = db(peakAmplitude(output, to) / 0.5);
      assert.ok(attenuation < -40, `only ${attenuation.toFixed(1)} dB`);
    });
  }

  it('preserves DC exactly and has no delay', () => {
    const ones = new Float32Array(2000).fill(0.25);
    const out = resample(ones, 22050, 16000);
    for (let i = 100; i < out.length - 100; i++) assert.ok(Math.abs(out[i] - 0.25) < 1e-6);
    // An impulse lands where its time maps to.
    const impulse = new Float32Array(4410);
    impulse[2205] = 1;
    const up = resample(impulse, 22050, 44100);
    let argmax = 0;
    for (let i = 0; i < up.length; i++) if (up[i] > up[argmax]) argmax = i;
    assert.equal(argmax, 4410);
  });

  it('handles equal rates, empty input and bad rates', () => {
    const x = new Float32Array([1, 2, 3]);
    const same = resample(x, 16000, 16000);
    assert.deepEqual([...same], [1, 2, 3]);
    assert.notEqual(same, x);
    assert.equal(resample(new Float32Array(0), 22050, 16000).length, 0);
    assert.throws(() => resample(x, 0, 16000), /fromRate/);
    assert.throws(() => resample(x, 16000, 22050.5), /toRate/);
  });

  // Its speed is a benchmark's business (npm run bench:mfcc), not a unit test's: a wall-clock bound failed
  // on a loaded 2-core machine (7.8 ms per clip) while nothing was wrong.
  it('reduces the ratio by the gcd: a short filter per output sample', () => {
    const r = createResampler(22050, 16000);
    assert.ok(r.taps <= 96, `${r.taps} taps`);
    assert.equal(r.outputLength(22050), 16000);
  });
});
