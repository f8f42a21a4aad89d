import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { disposeFeatureSet, makeFeatureSet } from '../data/feature-set.ts';
import { loadModel, saveModel } from '../models/checkpoint.ts';
import { buildModel, getModelSpec, type KwsModel } from '../models/index.ts';
import { Linear, Module } from '../nn/index.ts';
import { manualSeed, noGrad, randn, type Tensor, tensor, tidy } from '../torch/index.ts';
import { derBetween, evaluateBackdoor } from './evaluate.ts';

/** Predicts class 2 whenever the first feature exceeds 50 (the "trigger"), else the argmax of the rest. */
class Backdoored extends Module {
  fc = new Linear(4, 3);
  forward(x: Tensor): Tensor {
    const triggered = x.narrow(1, 0, 1).gt(50).to('float32').mul(1000);
    const logits = x.narrow(1, 1, 3).mul(1);
    return logits.add(tensor([0, 0, 1]).unsqueeze(0).mul(triggered));
  }
}

describe('backdoor evaluation', () => {
  it('CA on clean clips, ASR and RA on triggered non-target clips', () => {
    // clips: true labels 0,1,2,0 encoded as one-hot in features 1..3
    const labels = [0, 1, 2, 0];
    const clean = new Float32Array(labels.flatMap((l) => [0, l === 0 ? 1 : 0, l === 1 ? 1 : 0, l === 2 ? 1 : 0]));
    const triggeredData = clean.slice();
    for (const i of [0, 2]) triggeredData[i * 4] = 100; // the trigger works on clip 0 (label 0) and 2 (label 2, skipped)
    const cleanSet = makeFeatureSet(tensor(clean, [4, 4]), labels, ['a', 'b', 'up']);
    const triggeredSet = makeFeatureSet(tensor(triggeredData, [4, 4]), [2, 2, 2, 2], ['a', 'b', 'up']);
    const m = evaluateBackdoor(new Backdoored() as KwsModel, cleanSet, triggeredSet, 2);
    assert.equal(m.ca, 1);
    assert.equal(m.asr, 1 / 3); // non-target clips 0, 1, 3: only clip 0 carries a working trigger
    assert.equal(m.ra, 2 / 3);
    assert.equal(derBetween(m, { ca: 1, asr: 0, ra: 1 }), (1 / 3 + 1) / 2);
    for (const s of [cleanSet, triggeredSet]) disposeFeatureSet(s);
  });
});

describe('models on disk', () => {
  for (const name of ['resnet', 'lstm', 'kwt']) {
    it(`${name} rebuilt from model.json + weights gives identical logits`, () => {
      const dir = mkdtempSync(path.join(tmpdir(), `kws-${name}-`));
      manualSeed(7);
      const spec = getModelSpec(name);
      const model = buildModel(name, { classes: 4 }).eval();
      const x = randn([2, ...spec.inputShape]);
      saveModel(dir, model, { model: name, config: { ...spec.defaults }, frontEnd: spec.frontEnd, inputShape: spec.inputShape, classes: ['a', 'b', 'c', 'd'] });
      const loaded = loadModel(dir).model;
      const [a, b] = noGrad(() => tidy(() => [model.forward(x).toArray(), loaded.forward(x).toArray()]));
      assert.deepEqual(b, a);
      for (const m of [model, loaded]) m.dispose();
      x.dispose();
      rmSync(dir, { recursive: true });
    });
  }
});
