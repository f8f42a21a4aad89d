// The transform probe (transform-probe.ts) on a model with a known rule: a parameter-free module that calls a clip
// 'loud' or 'quiet' by its power and 'bright' when its sample-to-sample differences carry much energy, i.e. a
// model "backdoored" to any strong high tone. Quiet and loud 200 Hz sines are its clean clips.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { waveformFrontEnd } from '../audio/frontends.ts';
import type { KwsModel } from '../models/registry.ts';
import { Module } from '../nn/index.ts';
import { memory, stack, type Tensor, tensor, tidy } from '../torch/index.ts';
import { bankVerdict, familyResult } from './probe-bank.ts';
import { excessOverReferences, largestRate, logitRates, type ProbeRates, probeRates, probeTransforms, reverb, transformFamily } from './transform-probe.ts';

const sampleRate = 16000;
const samples = 16000;
const classes = ['quiet', 'loud', 'bright'];

class PowerRule extends Module {
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const power = x.mul(x).mean(1);
      const d = x.narrow(1, 1, samples - 1).sub(x.narrow(1, 0, samples - 1));
      const brightness = d.mul(d).mean(1);
      // quiet below power 0.06, loud above; bright above a difference energy of 0.005 (a 7.5 kHz tone at 10 dB SNR)
      return stack([power.neg().add(0.06).mul(100), power.sub(0.06).mul(100), brightness.sub(0.005).mul(10000)], 1);
    });
  }
}

/** clips sines of 200 Hz, amplitude 0.2 (label 0) and 0.5 (label 1), alternating, random phases. */
function sines(clips: number): { waves: Tensor; labels: number[] } {
  const labels = Array.from({ length: clips }, (_, i) => i % 2);
  const data = new Float32Array(clips * samples);
  labels.forEach((l, r) => {
    const amplitude = l === 0 ? 0.2 : 0.5;
    for (let i = 0; i < samples; i++) data[r * samples + i] = amplitude * Math.sin((2 * Math.PI * 200 * i) / sampleRate + r);
  });
  return { waves: tensor(data, [clips, samples]), labels };
}

describe('transform probe', () => {
  it('every transform keeps the batch shape, changes the clip, stays finite, and leaks nothing', () => {
    const { waves } = sines(2);
    const live = memory().liveTensors;
    const before = waves.toFloat32Array();
    for (const t of probeTransforms()) {
      const out = tidy(() => t.apply(waves, sampleRate).toFloat32Array());
      assert.equal(out.length, before.length, t.name);
      assert.ok(
        out.every((v) => Number.isFinite(v)),
        `${t.name}: a non-finite sample`,
      );
      const change = out.reduce((a, v, i) => a + Math.abs(v - before[i]), 0) / out.length;
      assert.ok(change > 1e-3, `${t.name} leaves the clip unchanged (mean |change| ${change})`);
    }
    assert.equal(memory().liveTensors, live);
    assert.equal(probeTransforms().length, 18);
    assert.equal(new Set(probeTransforms().map((t) => t.name)).size, 18);
    waves.dispose();
  });

  it('reverb: dry at wet 0; an impulse returns the unit-energy, decaying response', () => {
    const x = Float32Array.from({ length: 16000 }, (_, i) => Math.sin(i / 7));
    assert.deepEqual(reverb(x, sampleRate, { rt60: 0.5, wet: 0, seed: 0 }), x);
    const impulse = new Float32Array(16000);
    impulse[0] = 1;
    const response = reverb(impulse, sampleRate, { rt60: 0.5, wet: 1, seed: 0 });
    const energy = (from: number, to: number) => response.subarray(from, to).reduce((a, v) => a + v * v, 0);
    assert.ok(Math.abs(energy(0, 16000) - 1) < 1e-4, `energy ${energy(0, 16000)}`);
    assert.ok(energy(0, 2000) > 10 * energy(6000, 8000), 'the response decays');
    assert.ok(energy(8001, 16000) < 1e-20, 'nothing after rt60');
    assert.notDeepEqual(reverb(impulse, sampleRate, { rt60: 0.5, wet: 1, seed: 1 }), response);
  });

  it('counts where the clips go: the high tones send every clip to the bright class, pitch shifts none', () => {
    const model = new PowerRule() as unknown as KwsModel;
    const { waves, labels } = sines(8);
    const frontEnd = waveformFrontEnd('wave', sampleRate, samples, samples);
    const live = memory().liveTensors;
    const r = probeRates(model, waves, labels, classes, { sampleRate, toModelInput: (w) => frontEnd.apply(w), clipsPerForward: 3 });
    assert.equal(memory().liveTensors, live);
    assert.equal(r.cleanAccuracy, 1);
    assert.deepEqual(r.offClass, [4, 4, 8]);
    const row = (name: string) => r.hits[r.transforms.indexOf(name)];
    assert.deepEqual(row('tone7500'), [0, 0, 8]);
    for (const name of ['pitch-2', 'pitch+2']) assert.deepEqual(row(name), [0, 0, 0], name);
    for (const h of r.hits) assert.ok(h.reduce((a, b) => a + b, 0) <= 8);
    // a high-pass also sends every loud clip to 'quiet' (rate 1): the largest rate is 1, wherever it is first met
    assert.equal(largestRate(r).rate, 1);
    assert.deepEqual(row('highpass1500'), [4, 0, 0]);
    const logits = logitRates(r);
    assert.equal(logits.values.length, 18 * 3);
    const bright = logits.values[logits.names.indexOf('tone7500:bright')];
    assert.ok(Math.abs(bright - Math.log(8.5 / 0.5)) < 1e-12, `${bright}`);
    assert.throws(() => probeRates(model, waves, labels.slice(1), classes, { sampleRate, toModelInput: (w) => w }), /7 labels for 8 clips/);
    waves.dispose();
  });

  it('the excess over references cancels what clean models share and names the pair only the subject has', () => {
    // two transforms x three classes, 10 clips of other classes each; every model sends 'x' clips to class a
    const probe = (extra: [number, number, number][] = [], base = 6): ProbeRates => {
      const hits = [
        [base, 1, 0],
        [0, 2, 1],
      ];
      for (const [t, c, h] of extra) hits[t][c] = h;
      return { transforms: ['x', 'y'], classes: ['a', 'b', 'c'], hits, offClass: [10, 10, 10], cleanAccuracy: 1 };
    };
    const references = [probe(), probe([], 8), probe([[1, 2, 3]]), probe([[0, 1, 2]])];
    const subject = probe([[1, 1, 9]]); // 'y' sends 9 of 10 to b; references at most 2 of 10
    const e = excessOverReferences(subject, references);
    assert.deepEqual({ transform: e.transform, class: e.class }, { transform: 'y', class: 'b' });
    assert.ok(Math.abs(e.score - 0.7) < 1e-12, `${e.score}`);
    const family = transformFamily();
    const v = bankVerdict([familyResult(family, subject, references)], references.length);
    assert.deepEqual(
      { verdict: v.verdict, by: v.by, target: v.target, pValue: v.pValue, bound: v.falseAlarmBound },
      {
        verdict: 'found',
        by: 'transform',
        target: 'b',
        pValue: 1 / 5,
        bound: 1 / 5,
      },
    );
    assert.equal(v.families[0].detail, 'y');
    assert.equal(v.families[0].referenceScores.length, 4);
    // a subject like the references is not flagged; the attractor's 0.8 is shared, not an excess
    const like = bankVerdict([familyResult(family, probe([], 7), references)], references.length);
    assert.equal(like.verdict, 'not-found');
    assert.ok(like.families[0].score <= 0.1 + 1e-12, `${like.families[0].score}`);
    assert.ok(like.pValue > 1 / 5);
    // two families: the smallest p-value doubled (Bonferroni), the bound 2 / (n + 1)
    const two = bankVerdict([familyResult(family, subject, references), familyResult({ ...family, name: 'again' }, probe([], 7), references)], 4);
    assert.deepEqual(
      { verdict: two.verdict, by: two.by, pValue: two.pValue, bound: two.falseAlarmBound },
      { verdict: 'found', by: 'transform', pValue: 2 / 5, bound: 2 / 5 },
    );
    assert.throws(() => excessOverReferences(subject, [{ ...probe(), classes: ['a', 'b', 'z'] }]), /other transforms or classes/);
  });
});
