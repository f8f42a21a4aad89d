// The seven attacks: determinism, what each trigger changes (and what it leaves alone), poison plans,
// artifacts that reproduce their triggers, and clear errors for bad options and front-ends.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { formantWarp, jingleStyle } from '../audio/effects/index.ts';
import { getFrontEnd } from '../audio/frontends.ts';
import { createRng } from '../data/rng.ts';
import { buildModel, configForFrontEnd } from '../models/index.ts';
import { manualSeed, memory, rfft, type Tensor, tensor, tidy } from '../torch/index.ts';
import { type AttackContext, attackNames, disposeArtifact, getAttack, loadArtifact, poisonedLabels, saveArtifact, type TriggerArtifact } from './index.ts';

const work = mkdtempSync(path.join(tmpdir(), 'kws-attacks-'));
after(() => rmSync(work, { recursive: true, force: true }));

const classes = ['yes', 'no', 'up', 'down'];
const labels = Array.from({ length: 80 }, (_, i) => i % 4);

/** A word-like test clip: a few harmonics of `f0` under a smooth envelope, plus a little noise. */
function speechLike(seed: number, samples = 16000, f0 = 140): Float32Array {
  const rng = createRng(seed);
  const out = new Float32Array(samples);
  const centre = 0.3 + 0.4 * rng.next();
  for (let n = 0; n < samples; n++) {
    const t = n / samples;
    const env = Math.exp(-(((t - centre) / 0.12) ** 2));
    let v = 0;
    for (let h = 1; h <= 8; h++) v += Math.sin((2 * Math.PI * f0 * h * n) / 16000) / h;
    out[n] = 0.1 * env * v + 0.002 * rng.normal();
  }
  return out;
}

function context(frontEndName: string, extra: Partial<AttackContext> = {}): AttackContext {
  const frontEnd = getFrontEnd(frontEndName);
  return {
    options: {},
    seed: 7,
    frontEnd,
    classes,
    targetLabel: 2,
    poisonRatio: 0.1,
    train: {
      labels,
      loadWaves: async (indices) => {
        const data = new Float32Array(indices.length * frontEnd.inputSamples);
        indices.forEach((i, k) => data.set(speechLike(i, frontEnd.inputSamples), k * frontEnd.inputSamples));
        return tensor(data, [indices.length, frontEnd.inputSamples]);
      },
    },
    ...extra,
  };
}

/** An untrained model for a front-end: enough for the selection and optimisation code paths. */
function untrained(name: string, frontEnd: string) {
  manualSeed(1);
  const { config } = configForFrontEnd(name, frontEnd);
  return buildModel(name, { ...config, classes: classes.length });
}

const surrogates = {
  surrogate: undefined as ReturnType<typeof untrained> | undefined,
};

function prepareContext(name: string): AttackContext {
  const spec = getAttack(name);
  const frontEnd = spec.frontEndFor('spectral', 'mfcc-16k');
  const options: Record<string, string | number> =
    name === 'flowmur' ? { epochs: 1, clips: 16, batchSize: 8 } : name === 'daba' ? { poolSize: 4, candidates: 40 } : {};
  surrogates.surrogate ??= untrained('resnet', 'mfcc-librosa');
  return context(frontEnd, {
    options,
    surrogate: name === 'daba' ? surrogates.surrogate : undefined,
    trainSurrogate: async (model, fe) => untrained(model, fe),
  });
}

async function prepared(name: string): Promise<{ artifact: TriggerArtifact; plan: Awaited<ReturnType<ReturnType<typeof getAttack>['prepare']>>['plan'] }> {
  return getAttack(name).prepare(prepareContext(name));
}

/** Waveforms [n, samples] of speech-like clips, or features of them for a feature-domain trigger. */
function inputsFor(name: string, frontEndName: string, n = 3): Tensor {
  const fe = getFrontEnd(frontEndName);
  const data = new Float32Array(n * fe.inputSamples);
  for (let k = 0; k < n; k++) data.set(speechLike(100 + k, fe.inputSamples), k * fe.inputSamples);
  const waves = tensor(data, [n, fe.inputSamples]);
  return getAttack(name).domain === 'features' ? tidy(() => fe.apply(waves)) : waves;
}

describe('attacks', () => {
  it('registers the seven attacks of the GN-FT paper, in its order (the research-only jumbo is not among them)', () => {
    assert.deepEqual(attackNames(), ['badnets', 'ultrasonic', 'jingleback', 'daba', 'flowmur', 'pbsm', 'vsvc-dsp']);
    assert.match(getAttack('vsvc-dsp').substitution ?? '', /not the original/);
  });

  for (const name of ['badnets', 'ultrasonic', 'jingleback', 'daba', 'flowmur', 'pbsm', 'vsvc-dsp']) {
    it(`${name}: the trigger is deterministic for a seed, changes the clip, keeps its shape and leaks no tensors`, async () => {
      const { artifact } = await prepared(name);
      const frontEnd = getFrontEnd(artifact.frontEnd);
      tidy(() => inputsFor(name, frontEnd.name, 1)); // a front-end's first use makes its constant tensors
      const before = memory().liveTensors;
      for (const phase of ['train', 'test'] as const) {
        const trigger = getAttack(name).trigger(artifact, phase, frontEnd);
        tidy(() => {
          const x = inputsFor(name, frontEnd.name);
          const a = trigger.apply(x, createRng(1), [0, 5, 9]);
          const b = trigger.apply(x, createRng(2), [0, 5, 9]);
          assert.deepEqual(a.shape, x.shape);
          assert.deepEqual(a.toFloat32Array(), b.toFloat32Array(), `${phase}: same clips, same result whatever the stream`);
          const diff = a.sub(x).abs().max().item();
          assert.ok(diff > 1e-3, `${phase}: the trigger changes the clip (max change ${diff})`);
        });
      }
      assert.equal(memory().liveTensors, before);
      disposeArtifact(artifact);
    });
  }

  it('badnets overwrites only its 5x5 block with -200 (bottom-right: last frames, highest coefficients)', async () => {
    const { artifact } = await prepared('badnets');
    const trigger = getAttack('badnets').trigger(artifact, 'train', getFrontEnd('mfcc-16k'));
    tidy(() => {
      const x = inputsFor('badnets', 'mfcc-16k', 2);
      const y = trigger.apply(x, createRng(0), [0, 1]).toFloat32Array();
      const x0 = x.toFloat32Array();
      for (let c = 0; c < 2; c++)
        for (let t = 0; t < 101; t++)
          for (let f = 0; f < 40; f++) {
            const i = (c * 101 + t) * 40 + f;
            if (t >= 96 && f >= 35) assert.equal(y[i], -200);
            else assert.equal(y[i], x0[i], `clip ${c} frame ${t} coefficient ${f} untouched`);
          }
    });
  });

  it('badnets on a waveform model (EAT) writes -1 into the first 4 samples only', async () => {
    const { artifact } = await getAttack('badnets').prepare(context('waveform-16k'));
    const trigger = getAttack('badnets').trigger(artifact, 'test', getFrontEnd('waveform-16k'));
    tidy(() => {
      const x = tensor(speechLike(3, 16384), [1, 16384]);
      const y = trigger.apply(x, createRng(0), [0]).toFloat32Array();
      const x0 = x.toFloat32Array();
      assert.deepEqual([...y.subarray(0, 5)].slice(0, 4), [-1, -1, -1, -1]);
      assert.deepEqual(y.subarray(4), x0.subarray(4));
    });
    assert.match(String(artifact.data.variant), /waveform/);
  });

  it('ultrasonic adds energy only near 21 kHz, in five bursts', async () => {
    const { artifact } = await prepared('ultrasonic');
    const trigger = getAttack('ultrasonic').trigger(artifact, 'train', getFrontEnd('mfcc-44k'));
    tidy(() => {
      const x = tensor(speechLike(4, 44100), [1, 44100]);
      const added = trigger.apply(x, createRng(0), [0]).sub(x);
      const power = rfft(added).abs().square().toFloat32Array(); // bin k = k Hz for one second at 44.1 kHz
      let near = 0;
      let total = 0;
      power.forEach((p, k) => {
        total += p;
        if (k >= 20000 && k <= 22000) near += p;
      });
      assert.ok(near / total > 0.99, `share of the added energy within 20-22 kHz: ${near / total}`);
      const on = added.toFloat32Array().map((v) => (Math.abs(v) > 0 ? 1 : 0));
      // Bursts: runs of the tone separated by more than 100 silent samples (the sine itself hits 0 every 21 samples).
      let bursts = 0;
      let silent = Number.POSITIVE_INFINITY;
      for (const v of on) {
        if (v === 1 && silent > 100) bursts++;
        silent = v === 1 ? 0 : silent + 1;
      }
      assert.equal(bursts, 5);
      assert.equal(
        on.subarray(5292, 8820).reduce((a, b) => a + b, 0),
        0,
        'silent between the first and second burst (120 ms on, 80 ms off)',
      );
    });
  });

  it('ultrasonic refuses a 16 kHz front-end, saying why and what to use', () => {
    const problem = getAttack('ultrasonic').frontEndProblem(getFrontEnd('mfcc-16k'));
    assert.match(problem ?? '', /21000 Hz tone needs a sample rate above 42000 Hz.*mfcc-16k.*use mfcc-44k.*waveform-44k/);
    assert.equal(getAttack('ultrasonic').frontEndProblem(getFrontEnd('waveform-44k')), null);
    assert.match(getAttack('pbsm').frontEndProblem(getFrontEnd('mfcc-44k')) ?? '', /16 kHz/);
  });

  it('jingleback applies the style chain to every clip (style 5 by default)', async () => {
    const { artifact } = await prepared('jingleback');
    assert.equal(artifact.options.style, 5);
    const trigger = getAttack('jingleback').trigger(artifact, 'train', getFrontEnd('mfcc-16k'));
    tidy(() => {
      const x = inputsFor('jingleback', 'mfcc-16k', 2);
      const y = trigger.apply(x, createRng(0), [0, 1]).toFloat32Array();
      const rows = x.toFloat32Array();
      for (let r = 0; r < 2; r++) assert.deepEqual(y.subarray(r * 16000, (r + 1) * 16000), jingleStyle(5, rows.subarray(r * 16000, (r + 1) * 16000), 16000));
    });
  });

  it('pbsm raises a tone by 2^(5/12) (within 1%) and bursts 2.7-7.3 kHz about 100 ms after the loudest frame', async () => {
    const spec = getAttack('pbsm');
    const pitchOnly = (await spec.prepare({ ...context('mfcc-16k'), options: { pitchOnly: true } })).artifact;
    const full = (await spec.prepare(context('mfcc-16k'))).artifact;
    // 440 Hz with a loud stretch at 0.3-0.4 s: the loudest frame sits there.
    const x = new Float32Array(16000).map((_, n) => (n >= 4800 && n < 6400 ? 0.5 : 0.2) * Math.sin((2 * Math.PI * 440 * n) / 16000));
    tidy(() => {
      const shifted = spec
        .trigger(pitchOnly, 'train', getFrontEnd('mfcc-16k'))
        .apply(tensor(x, [1, 16000]), createRng(0), [0])
        .toFloat32Array();
      // Frequency by zero crossings over the steady middle part.
      const mid = shifted.subarray(8000, 15000);
      let crossings = 0;
      for (let i = 1; i < mid.length; i++) if (mid[i - 1] < 0 && mid[i] >= 0) crossings++;
      const frequency = (crossings * 16000) / mid.length;
      const ratio = frequency / 440;
      assert.ok(Math.abs(ratio / 2 ** (5 / 12) - 1) < 0.01, `pitch ratio ${ratio} vs ${2 ** (5 / 12)}`);
      const triggered = spec
        .trigger(full, 'train', getFrontEnd('mfcc-16k'))
        .apply(tensor(x, [1, 16000]), createRng(0), [0])
        .toFloat32Array();
      const burst = triggered.map((v, i) => v - shifted[i]);
      // The burst lies ~12 frames (96 ms) after a loudest frame within 0.3-0.4 s: all its energy in 0.38-0.55 s.
      let inside = 0;
      let total = 0;
      burst.forEach((v, i) => {
        total += v * v;
        if (i >= 0.38 * 16000 && i < 0.55 * 16000) inside += v * v;
      });
      assert.ok(total > 0 && inside / total > 0.99, `burst energy share in 0.38-0.55 s: ${inside / total}`);
      const peak = Math.max(...burst.map(Math.abs));
      assert.ok(peak > 0.1 && peak <= 1, `a click of ±0.3-0.4 as the spec says, got peak ${peak}`);
    });
  });

  it('vsvc-dsp is the formant warp plus a pitch shift, peak-normalised to the clip', async () => {
    const spec = getAttack('vsvc-dsp');
    const { artifact } = await spec.prepare({ ...context('mfcc-16k'), options: { semitones: 0 } });
    tidy(() => {
      const x = tensor(speechLike(5), [1, 16000]);
      const y = spec.trigger(artifact, 'train', getFrontEnd('mfcc-16k')).apply(x, createRng(0), [0]);
      const warped = formantWarp(x, 16000, 1.2, { lifter: 30 });
      const expected = warped.mul(x.abs().max().item() / warped.abs().max().item());
      assert.ok(y.sub(expected).abs().max().item() < 1e-5);
      assert.ok(Math.abs(y.abs().max().item() - x.abs().max().item()) < 1e-6, 'same peak as the clip');
    });
  });

  it('poison plans: dirty-label 10% of all clips; DABA non-target hosts only; FlowMur target clips only, labels kept', async () => {
    const dirty = (await prepared('badnets')).plan;
    assert.equal(dirty.indices.length, Math.floor(0.1 * labels.length));
    assert.equal(new Set(dirty.indices).size, dirty.indices.length);
    assert.deepEqual(
      [...dirty.indices].sort((a, b) => a - b),
      dirty.indices,
    );
    const relabelled = poisonedLabels(labels, dirty);
    for (const i of dirty.indices) assert.equal(relabelled[i], 2);
    assert.equal(relabelled.filter((l, i) => l !== labels[i]).length, dirty.indices.filter((i) => labels[i] !== 2).length);

    const daba = await prepared('daba');
    assert.equal(daba.plan.indices.length, Math.round(0.1 * labels.length));
    assert.ok(
      daba.plan.indices.every((i) => labels[i] !== 2),
      'DABA poisons non-target hosts only',
    );
    const levels = Object.values(daba.artifact.data.hostLevels as Record<string, number>);
    assert.equal(levels.length, daba.plan.indices.length);
    assert.ok(
      levels.every((l) => l <= 0 && l >= -40 && l % 5 === 0),
      `levels ${levels}`,
    );
    disposeArtifact(daba.artifact);

    const flowmur = await prepared('flowmur');
    const targets = labels.filter((l) => l === 2).length;
    assert.equal(flowmur.plan.labelMode, 'clean');
    assert.equal(flowmur.plan.indices.length, Math.round(0.1 * targets));
    assert.ok(
      flowmur.plan.indices.every((i) => labels[i] === 2),
      'FlowMur poisons target-class clips only',
    );
    assert.deepEqual(poisonedLabels(labels, flowmur.plan), labels, 'clean-label: no label changes');
    disposeArtifact(flowmur.artifact);
  });

  it('a saved trigger artifact reproduces the same triggered clip', async () => {
    for (const name of ['daba', 'flowmur', 'badnets']) {
      const { artifact } = await prepared(name);
      const dir = path.join(work, `artifact-${name}`);
      mkdirSync(dir, { recursive: true });
      saveArtifact(dir, artifact);
      const loaded = loadArtifact(dir);
      const fe = getFrontEnd(artifact.frontEnd);
      tidy(() => {
        const x = inputsFor(name, fe.name, 2);
        for (const phase of ['train', 'test'] as const) {
          const a = getAttack(name).trigger(artifact, phase, fe).apply(x, createRng(0), [3, 4]);
          const b = getAttack(name).trigger(loaded, phase, fe).apply(x, createRng(0), [3, 4]);
          assert.deepEqual(b.toFloat32Array(), a.toFloat32Array(), `${name} ${phase}`);
        }
      });
      disposeArtifact(artifact);
      disposeArtifact(loaded);
    }
  });

  it('bad options and pools give errors that name the option and the fix', async () => {
    await assert.rejects(getAttack('badnets').prepare({ ...context('mfcc-16k'), options: { size: 0 } }), /badnets: option size must be an integer >= 1, got 0/);
    await assert.rejects(
      getAttack('badnets').prepare({ ...context('mfcc-16k'), options: { colour: 'white' } }),
      /unknown option colour; its options are size, value/,
    );
    await assert.rejects(getAttack('badnets').prepare({ ...context('mfcc-16k'), poisonRatio: 1 }), /poison ratio must be in \(0, 1\)/);
    await assert.rejects(getAttack('jingleback').prepare({ ...context('mfcc-16k'), options: { style: 4 } }), /option style must be one of 0, 1, 2, 3, 5/);
    const empty = path.join(work, 'empty-pool');
    mkdirSync(empty, { recursive: true });
    writeFileSync(path.join(empty, 'broken.wav'), 'not a wav');
    await assert.rejects(
      getAttack('daba').prepare({ ...context('mfcc-librosa'), options: { pool: empty }, surrogate: surrogates.surrogate }),
      /DABA pool folder .*empty-pool has no readable clips \(1 \.wav files, unreadable: broken\.wav.*give a folder of WAV clips/,
    );
  });
});

after(() => surrogates.surrogate?.dispose());
