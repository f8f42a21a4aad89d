import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { backward, cat, manualSeed, memory, noGrad, randn, tensor, tidy } from '../torch/index.ts';
import { applyInBatches, type FrontEndName, fitLength, frontEndNames, frontEnds, getFrontEnd, mfcc16k } from './frontends.ts';
import { dctMatrix, hzToMel, melFilterbank, melToHz } from './mel.ts';

// ---- fixtures made by scripts/make-mfcc-fixture.py ----------------------------------------------------
interface SignalParams {
  name: string;
  sampleRate: number;
  samples: number;
  tones: [number, number, number][];
  chirp: [number, number, number];
  noise: number;
  noiseSeed: number;
  gate?: [number, number];
}
interface FixtureClip {
  signal: SignalParams;
  signalSum: number;
  signalAbsSum: number;
  shape: [number, number];
  maxAbs: number;
  data: string;
}
interface Fixture {
  frontEnd: FrontEndName;
  reference: string;
  clips: FixtureClip[];
}

const loadFixture = (name: string): Fixture => JSON.parse(readFileSync(new URL(`../../fixtures/mfcc/${name}.json`, import.meta.url), 'utf8'));

function decodeFloat32(base64: string): Float32Array {
  const bytes = Buffer.from(base64, 'base64');
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(4 * i);
  return out;
}

/** The fixture script's synthesize(), step for step in float64, rounded to float32. */
function synthesize(p: SignalParams): Float32Array {
  const { sampleRate: sr, samples: n } = p;
  const duration = n / sr;
  let state = p.noiseSeed >>> 0;
  const [gateStart, gateEnd] = p.gate ?? [0, n];
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / sr;
    let v = 0;
    for (const [freq, amp, phase] of p.tones) v += amp * Math.sin(2 * Math.PI * freq * t + phase);
    const [f0, f1, chirpAmp] = p.chirp;
    v += chirpAmp * Math.sin(2 * Math.PI * (f0 * t + ((f1 - f0) * t * t) / (2 * duration)));
    state = (1664525 * state + 1013904223) % 4294967296;
    v += p.noise * (2 * (state / 4294967296) - 1);
    if (i < gateStart || i >= gateEnd) v = 0;
    out[i] = v;
  }
  return out;
}

const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
};
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

const spectralNames = frontEndNames.filter((n) => !n.startsWith('waveform-'));

describe('front-ends match torchaudio / librosa references (fixtures/mfcc)', () => {
  for (const name of spectralNames) {
    it(`${name}: max error <= 1e-3 of the reference's max |value|`, (t) => {
      const fixture = loadFixture(name);
      assert.equal(fixture.frontEnd, name);
      const fe = getFrontEnd(name);
      const signals = fixture.clips.map((clip) => {
        const x = synthesize(clip.signal);
        // the test signal regenerated here is the one the reference saw
        let sum = 0;
        let absSum = 0;
        for (const v of x) {
          sum += v;
          absSum += Math.abs(v);
        }
        assert.ok(Math.abs(absSum - clip.signalAbsSum) <= 1e-6 * clip.signalAbsSum, `${clip.signal.name}: |x| sum ${absSum} vs ${clip.signalAbsSum}`);
        assert.ok(Math.abs(sum - clip.signalSum) <= 1e-6 * clip.signalAbsSum, `${clip.signal.name}: sum ${sum} vs ${clip.signalSum}`);
        assert.equal(x.length, fe.inputSamples);
        return x;
      });
      const got = noGrad(() =>
        tidy(() => {
          const wave = cat(signals.map((x) => tensor(x, [1, x.length])));
          const out = fe.apply(wave);
          assert.deepEqual(out.shape, [signals.length, ...fe.outputShape]);
          return out.toFloat32Array();
        }),
      );
      const perClip = got.length / signals.length;
      fixture.clips.forEach((clip, i) => {
        assert.deepEqual(clip.shape, fe.outputShape);
        const reference = decodeFloat32(clip.data);
        const relative = maxAbsDiff(got.subarray(i * perClip, (i + 1) * perClip), reference) / maxAbs(reference);
        t.diagnostic(`${name} / ${clip.signal.name}: max relative error ${relative.toExponential(2)}`);
        assert.ok(relative <= 1e-3, `${name} / ${clip.signal.name}: max relative error ${relative}`);
      });
    });
  }

  it('mfcc16k() is the mfcc-16k front-end', () => {
    const clip = loadFixture('mfcc-16k').clips[0];
    const reference = decodeFloat32(clip.data);
    const got = noGrad(() => tidy(() => mfcc16k(tensor(synthesize(clip.signal), [1, 16000])).toFloat32Array()));
    assert.ok(maxAbsDiff(got, reference) <= 1e-3 * maxAbs(reference));
  });
});

describe('front-end registry', () => {
  it('has the cli.md names with the documented per-clip shapes', () => {
    assert.deepEqual([...frontEndNames].sort(), [
      'logmel-16k',
      'mfcc-16k',
      'mfcc-44k',
      'mfcc-flowmur',
      'mfcc-kwt',
      'mfcc-librosa',
      'waveform-16k',
      'waveform-16k-1s',
      'waveform-44k',
    ]);
    const expected: Record<FrontEndName, [number, number, number[]]> = {
      'mfcc-16k': [16000, 16000, [101, 40]],
      'mfcc-44k': [44100, 44100, [100, 40]],
      'mfcc-librosa': [16000, 16000, [32, 40]],
      'mfcc-kwt': [16000, 16000, [98, 40]],
      'mfcc-flowmur': [16000, 16000, [32, 13]],
      'logmel-16k': [16000, 16000, [101, 40]],
      'waveform-16k': [16000, 16000, [16384]],
      'waveform-16k-1s': [16000, 16000, [16000]],
      'waveform-44k': [44100, 44100, [44288]],
    };
    for (const name of frontEndNames) {
      const fe = frontEnds[name];
      assert.equal(fe.name, name);
      assert.deepEqual([fe.sampleRate, fe.inputSamples, [...fe.outputShape]], expected[name], name);
    }
  });

  it('every front-end maps [batch, inputSamples] to [batch, ...outputShape] float32', () => {
    manualSeed(1);
    for (const name of frontEndNames) {
      const fe = frontEnds[name];
      noGrad(() =>
        tidy(() => {
          const out = fe.apply(randn([3, fe.inputSamples]).mul(0.1));
          assert.deepEqual(out.shape, [3, ...fe.outputShape], name);
          assert.equal(out.dtype, 'float32');
        }),
      );
    }
  });

  it('getFrontEnd names the valid front-ends when the name is unknown', () => {
    assert.equal(getFrontEnd('mfcc-kwt'), frontEnds['mfcc-kwt']);
    assert.throws(
      () => getFrontEnd('mfcc-8k'),
      /unknown front-end 'mfcc-8k'; valid front-ends: mfcc-16k, mfcc-44k, mfcc-librosa, mfcc-kwt, mfcc-flowmur, logmel-16k, waveform-16k, waveform-44k/,
    );
  });

  it('rejects a waveform of the wrong shape or dtype with a clear error', () => {
    tidy(() => {
      assert.throws(() => mfcc16k(randn([16000])), /'mfcc-16k': expected a waveform batch \[batch, 16000\] at 16000 Hz, got shape \[16000\]/);
      assert.throws(() => frontEnds['mfcc-44k'].apply(randn([2, 16000])), /\[batch, 44100\] at 44100 Hz, got shape \[2, 16000\].*fitLength/);
      assert.throws(() => mfcc16k(tensor(new Int32Array(16000), [1, 16000])), /floating-point waveform, got int32/);
    });
  });

  it('waveform-16k pads with zeros at the end or crops to 16384 samples', () => {
    tidy(() => {
      const fe = frontEnds['waveform-16k'];
      const short = randn([2, 16000]);
      const padded = fe.apply(short);
      assert.deepEqual(padded.shape, [2, 16384]);
      assert.deepEqual(padded.narrow(1, 0, 16000).toArray(), short.toArray());
      assert.equal(padded.narrow(1, 16000, 384).abs().sum().item(), 0);
      const long = randn([2, 20000]);
      assert.deepEqual(fe.apply(long).toArray(), long.narrow(1, 0, 16384).contiguous().toArray());
      assert.deepEqual(fitLength(long, 100).shape, [2, 100]);
    });
  });
});

describe('front-end behaviour', () => {
  it('a clip alone and inside a batch gives the same features (per-clip dB floor)', () => {
    manualSeed(2);
    for (const name of frontEndNames) {
      const fe = frontEnds[name];
      noGrad(() =>
        tidy(() => {
          // very different loudness per clip: a batch-wide floor would change the quiet one
          const batch = randn([3, fe.inputSamples]).mul(tensor([1, 0.001, 0.3], [3, 1]));
          const together = fe.apply(batch);
          for (let i = 0; i < 3; i++) {
            const alone = fe.apply(batch.narrow(0, i, 1)).toFloat32Array();
            const inBatch = together.narrow(0, i, 1).contiguous().toFloat32Array();
            assert.ok(maxAbsDiff(alone, inBatch) <= 1e-5 * Math.max(1, maxAbs(alone)), `${name}: clip ${i} alone vs in a batch`);
          }
        }),
      );
    }
  });

  it('applyInBatches equals one apply over the whole set', () => {
    manualSeed(3);
    noGrad(() =>
      tidy(() => {
        const waves = randn([10, 16000]).mul(0.1);
        const whole = mfcc16k(waves).toFloat32Array();
        const batched = applyInBatches(frontEnds['mfcc-16k'], waves, { batchSize: 4 });
        assert.deepEqual(batched.shape, [10, 101, 40]);
        assert.ok(maxAbsDiff(whole, batched.toFloat32Array()) <= 1e-4 * maxAbs(whole));
      }),
    );
  });

  it('gradients flow back to the waveform (finite, non-zero) through every front-end', () => {
    manualSeed(4);
    for (const name of frontEndNames) {
      const fe = frontEnds[name];
      tidy(() => {
        const wave = randn([2, fe.inputSamples]).mul(0.1);
        wave.requiresGrad = true;
        const out = fe.apply(wave);
        // a weighted sum, so the gradient is not a symmetric special case
        const weights = randn(out.shape);
        backward(out.mul(weights).sum());
        const g = wave.grad;
        assert.ok(g, `${name}: no gradient`);
        const values = g.toFloat32Array();
        assert.ok(values.every(Number.isFinite), `${name}: non-finite gradient`);
        assert.ok(maxAbs(values) > 0, `${name}: zero gradient`);
      });
    }
  });

  it('repeated calls inside tidy() leave no tensors behind', () => {
    manualSeed(5);
    const run = () => {
      for (const name of frontEndNames) {
        const fe = frontEnds[name];
        tidy(() => {
          const wave = randn([4, fe.inputSamples]);
          noGrad(() => fe.apply(wave));
          wave.requiresGrad = true;
          backward(fe.apply(wave).sum());
        });
        tidy(() => void applyInBatches(fe, randn([5, fe.inputSamples]), { batchSize: 2 }));
      }
    };
    run(); // builds each front-end's persistent filterbank/DCT/window once
    const before = memory().liveTensors;
    for (let i = 0; i < 3; i++) run();
    assert.equal(memory().liveTensors, before);
  });
});

describe('mel filterbanks and DCT', () => {
  it('HTK and Slaney mel scales invert', () => {
    for (const scale of ['htk', 'slaney'] as const) {
      for (const hz of [0, 100, 999, 1000, 4321, 22050]) assert.ok(Math.abs(melToHz(hzToMel(hz, scale), scale) - hz) < 1e-9 * Math.max(1, hz));
    }
    assert.ok(Math.abs(hzToMel(1000, 'htk') - 1000) < 0.1); // HTK: 1000 Hz is ~1000 mel
    assert.ok(Math.abs(hzToMel(1000, 'slaney') - 15) < 1e-12); // 1000 / (200/3)
  });

  it('torchaudio-style filters peak at 1 and Slaney-normalised ones have area 1 in Hz/2 units', () => {
    const nFreqs = 1025;
    const htk = melFilterbank({ sampleRate: 16000, nFft: 2048, nMels: 40 });
    const slaney = melFilterbank({ sampleRate: 16000, nFft: 2048, nMels: 40, scale: 'slaney', norm: 'slaney', binFrequencies: 'fft' });
    for (let m = 0; m < 40; m++) {
      let peak = 0;
      let area = 0;
      for (let k = 0; k < nFreqs; k++) {
        peak = Math.max(peak, htk[k * 40 + m]);
        area += slaney[k * 40 + m] * (16000 / 2048);
      }
      assert.ok(peak > 0.9 && peak <= 1, `HTK filter ${m} peak ${peak}`);
      assert.ok(Math.abs(area - 1) < 0.02, `Slaney filter ${m} area ${area}`);
    }
  });

  it('the orthonormal DCT-II matrix is orthogonal', () => {
    const n = 16;
    const d = dctMatrix(n, n);
    for (let a = 0; a < n; a++) {
      for (let b = 0; b < n; b++) {
        let dot = 0;
        for (let m = 0; m < n; m++) dot += d[m * n + a] * d[m * n + b];
        assert.ok(Math.abs(dot - (a === b ? 1 : 0)) < 1e-6);
      }
    }
  });
});
