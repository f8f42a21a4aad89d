import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { accuracy, attackSuccessRate, confusionMatrix, defenseEffectivenessRate, perClassAccuracy, robustAccuracy } from './metrics.ts';

describe('metrics', () => {
  it('accuracy, confusion and per-class recall', () => {
    const pred = [0, 1, 1, 2, 2, 2];
    const label = [0, 1, 2, 2, 2, 0];
    assert.equal(accuracy(pred, label), 4 / 6);
    const m = confusionMatrix(pred, label, 3);
    assert.deepEqual(m, [
      [1, 0, 1],
      [0, 1, 0],
      [0, 1, 2],
    ]);
    assert.deepEqual(perClassAccuracy(m), [0.5, 1, 2 / 3]);
    assert.throws(() => accuracy([1], [1, 2]), /1 predictions but 2 labels/);
  });

  it('ASR and RA skip clips whose true label is the target', () => {
    const target = 2;
    const pred = [2, 2, 0, 1, 2];
    const original = [0, 1, 0, 2, 2];
    // non-target clips: indices 0, 1, 2 -> predicted target at 0, 1
    assert.equal(attackSuccessRate(pred, original, target), 2 / 3);
    assert.equal(robustAccuracy(pred, original, target), 1 / 3);
  });

  it('DER is 0.5 for no change and 1 for a perfect defense', () => {
    const bd = { ca: 0.9, asr: 1, ra: 0 };
    assert.equal(defenseEffectivenessRate(bd, bd), 0.5);
    assert.equal(defenseEffectivenessRate(bd, { ca: 0.9, asr: 0, ra: 0.9 }), 1);
    assert.ok(Math.abs(defenseEffectivenessRate(bd, { ca: 0.7, asr: 1, ra: 0 }) - 0.4) < 1e-12);
  });
});
