import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { memory, tensor, tidy } from '../../torch/index.ts';
import { pitchShift, rationalApproximation, timeStretch } from './pitch-shift.ts';

const FS = 16000;

function tone(frequency: number, samples = FS, amplitude = 0.5, phase = 0): Float32Array {
  const out = new Float32Array(samples);
  for (let n = 0; n < samples; n++) out[n] = amplitude * Math.sin((2 * Math.PI * frequency * n) / FS + phase);
  return out;
}

/**
 * Frequency of a (near) pure tone over the middle half, from its interpolated upward zero crossings: the mean period
 * over ~150 cycles, so it resolves far better than 1%.
 */
function toneFrequency(x: Float32Array): number {
  const crossings: number[] = [];
  for (let n = Math.floor(x.length / 4); n < Math.floor((3 * x.length) / 4); n++) {
    if (x[n - 1] < 0 && x[n] >= 0) crossings.push(n - 1 + -x[n - 1] / (x[n] - x[n - 1]));
  }
  return (FS * (crossings.length - 1)) / (crossings[crossings.length - 1] - crossings[0]);
}

/** Spectral peak of the middle half in [from, to] Hz: Hann window, one-bin DFTs on a 2 Hz grid, parabolic refinement. */
function spectralPeak(x: Float32Array, from: number, to: number): number {
  const start = Math.floor(x.length / 4);
  const n = Math.floor(x.length / 2);
  const power = (f: number) => {
    let re = 0;
    let im = 0;
    for (let i = 0; i < n; i++) {
      const w = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n);
      const angle = (2 * Math.PI * f * i) / FS;
      re += w * x[start + i] * Math.cos(angle);
      im -= w * x[start + i] * Math.sin(angle);
    }
    return Math.log(re * re + im * im + 1e-30);
  };
  const step = 2;
  let best = from;
  let bestPower = -Infinity;
  for (let f = from; f <= to; f += step) {
    const p = power(f);
    if (p > bestPower) [best, bestPower] = [f, p];
  }
  const [a, b, c] = [power(best - step), bestPower, power(best + step)];
  return best + (0.5 * step * (a - c)) / (a - 2 * b + c);
}

const run = (x: Float32Array[], semitones: number) =>
  tidy(() => pitchShift(tensor(Float32Array.from(x.flatMap((row) => Array.from(row))), [x.length, x[0].length]), semitones).toFloat32Array());

describe('pitchShift', () => {
  it('+5 semitones moves a 440 Hz tone to 440 * 2^(5/12) = 587.3 Hz (within 1%), same length', () => {
    const shifted = run([tone(440)], 5);
    assert.equal(shifted.length, FS);
    const target = 440 * 2 ** (5 / 12);
    const byCrossings = toneFrequency(shifted);
    const byPeak = spectralPeak(shifted, 300, 900);
    assert.ok(Math.abs(byCrossings / target - 1) < 0.01, `zero crossings: ${byCrossings} Hz`);
    assert.ok(Math.abs(byPeak / target - 1) < 0.01, `spectral peak: ${byPeak} Hz`);
    // The level survives the vocoder and the resampler (a pure tone: within 1.5 dB).
    let peak = 0;
    for (let n = 4000; n < 12000; n++) peak = Math.max(peak, Math.abs(shifted[n]));
    assert.ok(peak > 0.42 && peak < 0.6, `peak ${peak}`);
  });

  it('-5 semitones moves it down to 329.6 Hz', () => {
    const shifted = run([tone(440)], -5);
    assert.equal(shifted.length, FS);
    const target = 440 * 2 ** (-5 / 12);
    assert.ok(Math.abs(toneFrequency(shifted) / target - 1) < 0.01, `${toneFrequency(shifted)} Hz`);
  });

  it('0 semitones returns the input (the vocoder at rate 1 rebuilds every frame)', () => {
    const input = tone(440, 8000);
    for (let n = 0; n < input.length; n++) input[n] += 0.2 * Math.sin(n * n * 1e-5); // a chirp, so phases vary
    const output = run([input], 0);
    let worst = 0;
    for (let n = 0; n < input.length; n++) worst = Math.max(worst, Math.abs(output[n] - input[n]));
    assert.ok(worst < 1e-5, `max |difference| ${worst}`);
  });

  it('a batch of two different clips gives what each clip gives alone', () => {
    const a = tone(440, 8000);
    const b = tone(300, 8000, 0.3, 1);
    for (let n = 0; n < b.length; n++) b[n] += 0.1 * Math.sin((2 * Math.PI * 1234 * n) / FS);
    const both = run([a, b], 5);
    const alone = [run([a], 5), run([b], 5)];
    for (let row = 0; row < 2; row++) {
      let worst = 0;
      for (let n = 0; n < 8000; n++) worst = Math.max(worst, Math.abs(both[row * 8000 + n] - alone[row][n]));
      assert.ok(worst < 1e-5, `row ${row}: max |difference| ${worst}`);
    }
    // And the rows really are different clips.
    assert.ok(Math.abs(both[4000] - both[12000]) > 1e-3);
  });

  it('timeStretch changes the length by 1/rate and keeps the pitch', () => {
    tidy(() => {
      const slower = timeStretch(tensor(tone(440), [1, FS]), 0.75);
      assert.deepEqual(slower.shape, [1, Math.round(FS / 0.75)]);
      const faster = timeStretch(tensor(tone(440), [1, FS]), 1.5);
      assert.deepEqual(faster.shape, [1, Math.round(FS / 1.5)]);
      for (const stretched of [slower, faster]) {
        const f = toneFrequency(stretched.toFloat32Array());
        assert.ok(Math.abs(f / 440 - 1) < 0.005, `${f} Hz`);
      }
    });
  });

  it('rationalApproximation picks small fractions close to 2^(n/12)', () => {
    assert.deepEqual(rationalApproximation(2 ** (5 / 12)).numerator, 295);
    assert.deepEqual(rationalApproximation(2 ** (5 / 12)).denominator, 221);
    for (let semitones = -24; semitones <= 24; semitones++) {
      const { numerator, denominator, error } = rationalApproximation(2 ** (semitones / 12));
      assert.ok(Math.min(numerator, denominator) <= 300, `${semitones}: ${numerator}/${denominator}`);
      assert.ok(Math.abs(numerator / denominator / 2 ** (semitones / 12) - 1) < 2e-5, `${semitones}: ${numerator}/${denominator} off by ${error}`);
    }
    assert.deepEqual(rationalApproximation(1), { numerator: 1, denominator: 1, error: 0 });
  });

  it('leaves no tensors behind and rejects non-batched input', () => {
    const before = memory().liveTensors;
    run([tone(440, 4000), tone(220, 4000)], 5);
    tidy(() => void timeStretch(tensor(tone(440, 4000), [1, 4000]), 0.8));
    assert.equal(memory().liveTensors, before);
    assert.throws(() => tidy(() => pitchShift(tensor(tone(440, 100)), 5)), /\[batch, samples\]/);
    assert.equal(memory().liveTensors, before);
  });
});
