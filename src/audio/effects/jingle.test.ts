import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { memory } from '../../torch/index.ts';
import { chorus, distortion, gain, jingleStyle, jingleStyles, ladderFilter, phaser } from './jingle.ts';

const FS = 16000;

function tones(parts: [frequency: number, amplitude: number][], seconds = 0.5, fs = FS): Float32Array {
  const out = new Float32Array(Math.round(seconds * fs));
  for (let n = 0; n < out.length; n++) for (const [f, a] of parts) out[n] += a * Math.sin((2 * Math.PI * f * n) / fs);
  return out;
}

/** The brief's test signal: 300 Hz + 2 kHz, 0.3 peak together, 0.5 s at 16 kHz. */
const testSignal = tones([
  [300, 0.15],
  [2000, 0.15],
]);

/**
 * JingleBack style 5 written a second time, straight from specs/attacks.md §3 (its numbers, its variable names), one
 * plain loop per effect in float64: Gain +12 dB, Ladder HPF12 1 kHz, Phaser 1 Hz / 0.5 / 1300 Hz / fb 0 / mix 0.5.
 */
function referenceStyle5(x: Float32Array, fs: number): Float64Array {
  const n = x.length;
  const gained = new Float64Array(n);
  for (let i = 0; i < n; i++) gained[i] = 10 ** (12 / 20) * x[i];

  const a1 = Math.exp((-2 * Math.PI * 1000) / fs);
  const g = 1 - a1;
  const b0 = 0.76923 * g;
  const b1 = 0.23077 * g;
  const gainIn = 1.0006; // the spec's value at drive 1
  const gain2 = 1.0006;
  const r = 0.1;
  const s = [0, 0, 0, 0, 0];
  const filtered = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const dx = gainIn * Math.tanh(gained[i]);
    const a = dx - 4 * r * gain2 * Math.tanh(s[4]);
    const b = b1 * s[0] + a1 * s[1] + b0 * a;
    const c = b1 * s[1] + a1 * s[2] + b0 * b;
    const d = b1 * s[2] + a1 * s[3] + b0 * c;
    const e = b1 * s[3] + a1 * s[4] + b0 * d;
    s[0] = a;
    s[1] = b;
    s[2] = c;
    s[3] = d;
    s[4] = e;
    filtered[i] = 1.2 * (a - 2 * b + c);
  }

  const fmax = Math.min(20000, 0.49 * fs);
  const c0 = Math.log10(1300 / 20) / Math.log10(fmax / 20);
  const stages = [0, 0, 0, 0, 0, 0];
  const out = new Float64Array(n);
  let G = 0;
  for (let i = 0; i < n; i++) {
    if (i % 4 === 0) {
      const phi = (2 * Math.PI * 1 * i) / fs;
      const f = 20 * (fmax / 20) ** Math.min(1, Math.max(0, c0 + 0.25 * Math.sin(phi)));
      const t = Math.tan((Math.PI * f) / fs);
      G = t / (1 + t);
    }
    let y = filtered[i];
    for (let k = 0; k < 6; k++) {
      const v = G * (y - stages[k]);
      const lp = v + stages[k];
      stages[k] = lp + v;
      y = 2 * lp - y;
    }
    out[i] = 0.5 * filtered[i] + 0.5 * y;
  }
  return out;
}

/** Amplitude of the component at frequency over the second half (after the filters settle), by a one-bin DFT. */
function amplitudeAt(x: Float32Array, frequency: number, fs = FS): number {
  const from = Math.floor(x.length / 2);
  let re = 0;
  let im = 0;
  for (let n = from; n < x.length; n++) {
    re += x[n] * Math.cos((2 * Math.PI * frequency * n) / fs);
    im -= x[n] * Math.sin((2 * Math.PI * frequency * n) / fs);
  }
  return (2 * Math.hypot(re, im)) / (x.length - from);
}

function rmsOfSecondHalf(x: Float32Array): number {
  let sum = 0;
  for (let n = x.length / 2; n < x.length; n++) sum += x[n] * x[n];
  return Math.sqrt(sum / (x.length / 2));
}

const maxAbsDifference = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
};

describe('jingle effects', () => {
  it('the spec reference reproduces the spec constants (a1 0.6752, c0 0.699, sweep 290 Hz..5.8 kHz)', () => {
    assert.ok(Math.abs(Math.exp((-2 * Math.PI * 1000) / FS) - 0.6752) < 5e-5);
    const fmax = Math.min(20000, 0.49 * FS);
    assert.equal(fmax, 7840);
    const c0 = Math.log10(1300 / 20) / Math.log10(fmax / 20);
    assert.ok(Math.abs(c0 - 0.699) < 5e-4);
    assert.ok(Math.abs(20 * (fmax / 20) ** (c0 - 0.25) - 290) < 5);
    assert.ok(Math.abs(20 * (fmax / 20) ** (c0 + 0.25) - 5800) < 60);
  });

  it('style 5 equals the independent spec reference sample by sample', () => {
    const got = jingleStyle(5, testSignal, FS);
    const want = referenceStyle5(testSignal, FS);
    assert.equal(got.length, testSignal.length);
    const worst = maxAbsDifference(got, want);
    assert.ok(worst < 1e-6, `max |difference| ${worst}`);
    // Not a trivial agreement: the chain changes the signal a lot.
    assert.ok(maxAbsDifference(got, testSignal) > 0.1);
  });

  it('the ladder HPF12 attenuates 100 Hz by > 10 dB relative to 4 kHz; LPF12 the other way', () => {
    const input = tones([
      [100, 0.1],
      [4000, 0.1],
    ]);
    const high = ladderFilter(input, FS, { mode: 'HPF12', cutoffHz: 1000 });
    const hpfDb = 20 * Math.log10(amplitudeAt(high, 4000) / amplitudeAt(high, 100));
    assert.ok(hpfDb > 10, `HPF12: 4 kHz only ${hpfDb.toFixed(1)} dB above 100 Hz`);
    const low = ladderFilter(input, FS, { mode: 'LPF12', cutoffHz: 1000 });
    const lpfDb = 20 * Math.log10(amplitudeAt(low, 100) / amplitudeAt(low, 4000));
    assert.ok(lpfDb > 10, `LPF12: 100 Hz only ${lpfDb.toFixed(1)} dB above 4 kHz`);
  });

  it('drive scales the small-signal level by drive * gain(drive) / gain(1), gain(d) = 0.6103 d^-2.642 + 0.3903', () => {
    // At drive 1 the gains are the spec's 1.0006 (the style-5 reference test pins that); at drive 4 a quiet tone sees
    // tanh(4x) ~ 4x times 0.406, i.e. 1.62 times the drive-1 level (the feedback path barely matters at 4 kHz).
    const quiet = tones([[4000, 0.01]]);
    const ratio = amplitudeAt(ladderFilter(quiet, FS, { drive: 4 }), 4000) / amplitudeAt(ladderFilter(quiet, FS, { drive: 1 }), 4000);
    assert.ok(Math.abs(ratio - 1.623) < 0.01, `level ratio ${ratio}`);
    assert.throws(() => ladderFilter(quiet, FS, { drive: 0.5 }), /drive must be >= 1/);
  });

  it('the phaser with mix 0 returns the input; with mix 1 it is an all-pass (level kept, waveform changed)', () => {
    assert.deepEqual(phaser(testSignal, FS, { mix: 0 }), testSignal);
    const tone = tones([[1000, 0.2]]);
    // Unswept (depth 0) it is a fixed all-pass: the tone keeps its amplitude but not its phase.
    const fixed = phaser(tone, FS, { mix: 1, depth: 0 });
    assert.ok(Math.abs(amplitudeAt(fixed, 1000) - 0.2) < 0.002);
    assert.ok(maxAbsDifference(fixed, tone) > 0.05);
    // Swept, the phase moves (sidebands) but the level stays.
    const swept = phaser(tone, FS, { mix: 1 });
    assert.ok(Math.abs(rmsOfSecondHalf(swept) / rmsOfSecondHalf(tone) - 1) < 0.02);
    // Half wet, the notches appear: the sum dips where the all-pass output is out of phase.
    assert.ok(Math.abs(rmsOfSecondHalf(phaser(tone, FS)) / rmsOfSecondHalf(tone) - 1) > 0.05);
  });

  it('gain and distortion follow their formulas', () => {
    assert.ok(Math.abs(gain(new Float32Array([0.25]), 12)[0] - 0.25 * 3.981) < 1e-3);
    const driven = distortion(new Float32Array([0.01, -0.5]), 30);
    assert.ok(Math.abs(driven[0] - Math.tanh(10 ** 1.5 * 0.01)) < 1e-7);
    assert.ok(Math.abs(driven[1] + 1) < 1e-6);
  });

  it('chorus: mix 0 is the input; depth 0 is the dry signal plus a fixed delay', () => {
    assert.deepEqual(chorus(testSignal, FS, { mix: 0 }), testSignal);
    // 10 ms at 16 kHz is exactly 160 samples: (x[n] + x[n - 160]) / 2.
    const fixed = chorus(testSignal, FS, { depth: 0, centreDelayMs: 10, mix: 0.5 });
    for (const n of [100, 160, 1234, 7999]) {
      const want = 0.5 * testSignal[n] + 0.5 * (n >= 160 ? testSignal[n - 160] : 0);
      assert.ok(Math.abs(fixed[n] - want) < 1e-6, `sample ${n}`);
    }
    // Modulated, it is no longer a fixed delay.
    const moving = chorus(testSignal, FS, { depth: 0.5, centreDelayMs: 10, mix: 0.5 });
    assert.ok(maxAbsDifference(moving, fixed) > 0.01);
  });

  it('every style is deterministic and finite on silence and full-scale input', () => {
    const before = memory().liveTensors;
    const fullScale = tones([[440, 1]], 0.25);
    for (const style of jingleStyles) {
      for (const input of [new Float32Array(4000), fullScale]) {
        const first = jingleStyle(style, input, FS);
        assert.equal(first.length, input.length);
        assert.ok(
          first.every((v) => Number.isFinite(v)),
          `style ${style}: non-finite output`,
        );
        assert.deepEqual(jingleStyle(style, input, FS), first, `style ${style} is not deterministic`);
      }
      assert.ok(
        jingleStyle(style, new Float32Array(4000), FS).every((v) => v === 0),
        `style ${style}: silence in, sound out`,
      );
    }
    assert.equal(memory().liveTensors, before);
  });

  it('style 0 raises the pitch by 10 semitones', () => {
    const shifted = jingleStyle(0, tones([[300, 0.3]]), FS);
    const target = 300 * 2 ** (10 / 12);
    assert.ok(amplitudeAt(shifted, target) > 10 * amplitudeAt(shifted, 300));
  });

  it('style 4 (reverb) and unknown styles throw, naming the styles that exist', () => {
    assert.throws(() => jingleStyle(4, testSignal, FS), /available: 0, 1, 2, 3, 5.*reverb/);
    assert.throws(() => jingleStyle(7, testSignal, FS), /available: 0, 1, 2, 3, 5/);
  });
});
