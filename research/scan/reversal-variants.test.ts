// The scan designs measured beside Neural Cleanse (research/scan/scan-explore.ts): feature-space Neural Cleanse,
// MM-BD's maximum margins, the time-invariant spectral shift and the adversarial neuron perturbation, on the
// toy backdoor of scan.test.ts. Each leaves the model bit-identical and leaks no tensor; the ones whose
// premise the toy satisfies (a patch trigger that sets a block to the top of the clean range) find its target.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { disposeFeatureSet } from '../../src/data/feature-set.ts';
import { memory, tidy } from '../../src/torch/index.ts';
import { toySet, trainToy } from '../../test/helpers/analysis-toys.ts';
import { maxMargins } from './max-margin.ts';
import { reverseEngineerVariant } from './neural-cleanse-variants.ts';
import { perturbedPredictions } from './neuron-perturbation.ts';
import { reverseEngineerShifts } from './spectral-shift.ts';

const toy = { classes: 8, limit: 1.5 };
const target = 2;

/** A fingerprint of every parameter and buffer: changes if any element does. */
function fingerprint(model: { namedParameters(): [string, { toFloat32Array(): Float32Array }][] }): number[] {
  return model.namedParameters().map(([, p]) => p.toFloat32Array().reduce((a, v, i) => a + v * ((i % 7) + 1), 0));
}

describe('scan design variants on a toy backdoor', () => {
  const model = trainToy({ seed: 1, steps: 150, ...toy, poison: { patch: { value: 1.5, size: 2 }, target, ratio: 0.1 } });
  const clean = toySet(64, 12, toy);
  after(() => {
    disposeFeatureSet(clean);
    model.dispose();
  });

  it('feature-space Neural Cleanse stamps a module output, per element or per channel', () => {
    const before = fingerprint(model);
    const live = memory().liveTensors;
    const perElement = reverseEngineerVariant(model, clean, { steps: 60, layer: 'block', range: 'per-channel' });
    const perChannel = reverseEngineerVariant(model, clean, { steps: 60, layer: 'block', maskOver: 'channels' });
    assert.equal(memory().liveTensors, live);
    assert.deepEqual(fingerprint(model), before);
    for (const r of [...perElement, ...perChannel]) assert.ok(r.maskL1 > 0 && r.maskL1 < 1, `${r.class}: ${r.maskL1}`);
    assert.equal(perChannel.length, 8);
    assert.throws(() => reverseEngineerVariant(model, clean, { steps: 1, layer: 'nope' }), /no module 'nope'; its modules are .*block/);
  });

  it('MM-BD: the backdoor target reaches the largest margin', () => {
    const before = fingerprint(model);
    const live = memory().liveTensors;
    const margins = maxMargins(model, clean, { steps: 60, starts: 4 });
    assert.equal(memory().liveTensors, live);
    assert.deepEqual(fingerprint(model), before);
    const best = margins.reduce((a, b) => (b.margin > a.margin ? b : a));
    assert.equal(best.label, target, JSON.stringify(margins.map((m) => m.margin.toFixed(2))));
    assert.deepEqual(maxMargins(model, clean, { steps: 5, starts: 2, seed: 3 }), maxMargins(model, clean, { steps: 5, starts: 2, seed: 3 }));
  });

  it('spectral shift: one offset per coefficient, the same in every frame', () => {
    const before = fingerprint(model);
    const live = memory().liveTensors;
    const shifts = reverseEngineerShifts(model, clean, { steps: 60 });
    assert.equal(memory().liveTensors, live);
    assert.deepEqual(fingerprint(model), before);
    assert.equal(shifts.length, 8);
    for (const s of shifts) assert.ok(Number.isFinite(s.rms) && s.rms >= 0);
    const flat = tidy(() => ({ ...clean, features: clean.features.flatten(1) }));
    assert.throws(() => reverseEngineerShifts(model, flat, { steps: 1 }), /needs frames x coefficients features/);
    flat.features.dispose();
  });

  it('neuron perturbation: no perturbation keeps the clean predictions; a large one moves them', () => {
    const before = fingerprint(model);
    const live = memory().liveTensors;
    const none = perturbedPredictions(model, clean, { eps: 0 });
    const large = perturbedPredictions(model, clean, { eps: 0.5 });
    assert.equal(memory().liveTensors, live);
    assert.deepEqual(fingerprint(model), before);
    const predicted = tidy(() => model.forward(clean.features).argmax(1).toArray());
    const accuracy = clean.labelList.filter((l, i) => predicted[i] === l).length / clean.size;
    assert.equal(none.accuracy, accuracy);
    assert.ok(large.accuracy < none.accuracy, `${large.accuracy} vs ${none.accuracy}`);
    assert.ok(large.received.every((v) => v >= 0 && v <= 1));
  });
});
