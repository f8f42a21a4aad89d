// The model-level scan and the input-level detector on a toy backdoor: Neural Cleanse finds the planted
// class, STRIP gives triggered inputs lower entropy, the AUROC and the quantile are right on known inputs.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { toySet, trainToy } from '../../test/helpers/analysis-toys.ts';
import { disposeFeatureSet } from '../data/feature-set.ts';
import { auroc, ratesAt } from './auroc.ts';
import { anomalyIndices, median } from './neural-cleanse.ts';
import { balancedSubset, scanModel } from './scan.ts';
import { quantile, stripEntropies, stripThreshold } from './strip.ts';

// 8 classes of 8x8 clips clamped to +-1.5; the trigger is the bottom-right 2x2 block at the top of that range.
const toy = { classes: 8, limit: 1.5 };
const patch = { value: 1.5, size: 2 };
const target = 2;

describe('backdoor scan and STRIP on a toy backdoor', () => {
  const model = trainToy({ seed: 1, steps: 150, ...toy, poison: { patch, target, ratio: 0.1 } });
  const clean = toySet(64, 12, toy);
  after(() => {
    disposeFeatureSet(clean);
    model.dispose();
  });

  it("Neural Cleanse's smallest mask is the planted target's, its anomaly index above Neural Cleanse's 2; no verdict", () => {
    const result = scanModel(model, { neuronLayers: model.neuronLayers(), inputKind: 'spectral' }, clean, { seed: 0 });
    assert.equal(result.smallestMask, clean.classes[target], JSON.stringify(result.perClass.map((c) => c.maskL1)));
    assert.equal('verdict' in result, false);
    assert.ok(result.anomalyIndex > 2, `anomaly index ${result.anomalyIndex}`);
    assert.equal(result.perClass.length, 8);
    const others = result.perClass.filter((c) => c.label !== target).map((c) => c.maskL1);
    assert.ok(result.perClass[target].maskL1 < Math.min(...others));
    assert.deepEqual(
      result.gradientSignature.layers.map((l) => l.layer),
      ['block.conv2', 'head'],
    );
    assert.ok(Number.isFinite(result.gradientSignature.score));
  });

  it('STRIP: blends of triggered inputs have lower entropy than those of clean inputs', () => {
    const triggered = toySet(64, 13, { ...toy, patch });
    const inputs = toySet(64, 13, toy);
    try {
      const keep = inputs.labelList.map((l, i) => (l === target ? -1 : i)).filter((i) => i >= 0);
      const pick = (xs: number[]) => keep.map((i) => xs[i]);
      const onTriggered = pick(stripEntropies(model, triggered.features, clean.features, { mixes: 16 }));
      const onClean = pick(stripEntropies(model, inputs.features, clean.features, { mixes: 16 }));
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      assert.ok(mean(onTriggered) < mean(onClean), `${mean(onTriggered)} vs ${mean(onClean)}`);
      // The toy model is confident on most blends, clean ones too, so the separation is partial (0.73 measured).
      assert.ok(
        auroc(
          onTriggered.map((e) => -e),
          onClean.map((e) => -e),
        ) > 0.65,
      );
      // The pool's own entropies (each clip never blended with itself) set the threshold.
      const self = stripEntropies(model, clean.features, clean.features, { mixes: 16, selfInPool: (i) => i });
      const threshold = stripThreshold(self, 0.05);
      assert.ok(onTriggered.filter((e) => e < threshold).length > 3 * onClean.filter((e) => e < threshold).length);
      assert.deepEqual(
        stripEntropies(model, inputs.features, clean.features, { mixes: 16 }),
        stripEntropies(model, inputs.features, clean.features, { mixes: 16 }),
      );
    } finally {
      disposeFeatureSet(triggered);
      disposeFeatureSet(inputs);
    }
  });
});

describe('scores', () => {
  it('AUROC is the Mann-Whitney statistic, ties counting half', () => {
    assert.equal(auroc([3, 4, 5], [0, 1, 2]), 1);
    assert.equal(auroc([0, 1, 2], [3, 4, 5]), 0);
    assert.equal(auroc([1, 1], [1, 1]), 0.5);
    // pairs (p, n): (2,1) win, (2,3) loss, (4,1) win, (4,3) win -> 3/4
    assert.equal(auroc([2, 4], [1, 3]), 0.75);
    // a tie counts half: (2,2) half, (2,1) win -> 1.5 / 2
    assert.equal(auroc([2], [2, 1]), 0.75);
    assert.ok(Number.isNaN(auroc([], [1])));
    assert.deepEqual(ratesAt([3, 1], [0, 2], 1.5), { tpr: 0.5, fpr: 0.5, accuracy: 0.5 });
  });

  it('quantiles interpolate; the anomaly index is the MAD distance below the median', () => {
    assert.equal(quantile([4, 1, 3, 2], 0), 1);
    assert.equal(quantile([4, 1, 3, 2], 1), 4);
    assert.equal(quantile([1, 2, 3, 4, 5], 0.5), 3);
    assert.ok(Math.abs(quantile([1, 2, 3, 4, 5], 0.1) - 1.4) < 1e-12);
    assert.equal(median([5, 1, 3]), 3);
    const { indices, median: med, mad } = anomalyIndices([10, 11, 9, 10, 2]);
    assert.equal(med, 10);
    assert.equal(mad, 1);
    assert.ok(Math.abs(indices[4] - 8 / 1.4826) < 1e-9);
    assert.equal(indices[1], 0, 'above the median is not anomalous');
  });

  it('a balanced subset takes clips round-robin over the classes', () => {
    const labels = [0, 0, 0, 0, 1, 1, 2];
    const chosen = balancedSubset(labels, 4, 0);
    assert.equal(chosen.length, 4);
    const per = [0, 1, 2].map((c) => chosen.filter((i) => labels[i] === c).length);
    assert.deepEqual(per, [2, 1, 1]);
    assert.deepEqual(balancedSubset(labels, 10, 0), [0, 1, 2, 3, 4, 5, 6]);
  });
});
