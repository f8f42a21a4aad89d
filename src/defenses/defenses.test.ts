// FT, FP and GN-FT as procedures: the fine-tuning loop's batching, BatchNorm handling, hold-out choices,
// determinism and memory; FP's mask; refusals of clean sets and options they cannot work with.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { bandedClips, seededToy, ToyConv, toyInfo, twoRunsNoLeak } from '../../test/helpers/defense-toys.ts';
import { disposeFeatureSet } from '../data/feature-set.ts';
import { type Module, recalibrateBatchNorm } from '../nn/index.ts';
import { memory, type Tensor, tidy } from '../torch/index.ts';
import { withStepBudget } from './fine-tune.ts';
import { epochBatches, getDefense, holdoutIndices } from './index.ts';

const work = mkdtempSync(path.join(tmpdir(), 'kws-defenses-'));
after(() => rmSync(work, { recursive: true, force: true }));

const toyModel = (seed = 0) => seededToy(() => new ToyConv(), seed);

const quick = { epochs: 3, batchSize: 16, lr: 0.05 };
const weightsOf = (m: Module) => [...m.stateDict()].map(([k, v]) => [k, Array.from(v.toFloat32Array())] as const);

describe('fine-tuning loop', () => {
  it('merges, drops or keeps the short last batch', () => {
    const sizes = (policy: 'merge' | 'drop' | 'keep') => epochBatches(70, 32, policy, 1).map((b) => b.length);
    assert.deepEqual(sizes('merge'), [32, 38]);
    assert.deepEqual(sizes('drop'), [32, 32]);
    assert.deepEqual(sizes('keep'), [32, 32, 6]);
    assert.deepEqual(new Set(epochBatches(70, 32, 'merge', 1).flat()).size, 70, 'merge uses every clip once');
    assert.deepEqual(
      epochBatches(10, 32, 'drop', 1).map((b) => b.length),
      [10],
      'a set smaller than one batch is one batch',
    );
  });

  it('a step budget sets the epochs from the batches per epoch', () => {
    const base = { epochs: 7, batchSize: 32, shortBatch: 'merge' } as Parameters<typeof withStepBudget>[0];
    assert.equal(withStepBudget({ ...base, steps: 0 }, 100).epochs, 7, 'no budget: the epochs stand');
    assert.equal(withStepBudget({ ...base, steps: 30 }, 100).epochs, 10, '100 clips merge into 3 batches: 10 epochs');
    assert.equal(withStepBudget({ ...base, steps: 30 }, 1000).epochs, 1, '31 batches: one epoch covers 30 steps');
  });

  it('splits clean clips into stratified, disjoint fit and hold-out parts', () => {
    const labels = Array.from({ length: 50 }, (_, i) => i % 5);
    const { fit, holdout } = holdoutIndices(labels, 0.2, 3);
    assert.equal(fit.length + holdout.length, 50);
    assert.equal(new Set([...fit, ...holdout]).size, 50);
    for (let c = 0; c < 5; c++) assert.equal(holdout.filter((i) => labels[i] === c).length, 2);
    assert.deepEqual(holdoutIndices(labels, 0.2, 3), { fit, holdout }, 'seeded');
  });

  it('recalibrated BatchNorm statistics are the plain average over the batches', () => {
    const model = toyModel();
    const set = bandedClips(48, 1);
    const batches = [0, 16, 32].map((s) => set.features.narrow(0, s, 16));
    const live = memory().liveTensors;
    // A forward that leaves intermediates behind (as a model without its own tidy does): none may outlive it.
    recalibrateBatchNorm(model, (x) => model.forward(x).relu().mul(1), batches);
    assert.equal(memory().liveTensors, live, 'recalibration leaves no tensors behind');
    const bn = model.bn1;
    // Expected: the mean over batches of each batch's channel means of conv1's output.
    const expected = tidy(() => {
      const conv = model.conv1;
      const means = batches.map((b) => conv.forward(b.unsqueeze(1)).mean([0, 2, 3]).toArray());
      return means[0].map((_, c) => (means[0][c] + means[1][c] + means[2][c]) / 3);
    });
    bn.running_mean.toArray().forEach((v, c) => assert.ok(Math.abs(v - expected[c]) < 1e-5, `channel ${c}: ${v} vs ${expected[c]}`));
    for (const b of batches) b.dispose();
    disposeFeatureSet(set);
  });
});

describe('defenses', () => {
  for (const name of ['ft', 'gnft', 'fp']) {
    it(`${name}: the same seed gives bit-identical weights; memory is flat; the hold-out is reported`, async () => {
      const clean = bandedClips(60, 2);
      const runOnce = async () => {
        const model = toyModel(4);
        const spec = getDefense(name);
        const report = await spec.run(model, clean, { options: { ...spec.recipes.default, ...quick }, seed: 5, model: toyInfo });
        const weights = weightsOf(model);
        model.dispose();
        return { report, weights };
      };
      const { first, second } = await twoRunsNoLeak(runOnce);
      assert.deepEqual(second.weights, first.weights);
      assert.equal(first.report.fitClips + first.report.holdoutClips, 60);
      assert.ok(first.report.holdoutAfter >= 0 && first.report.holdoutAfter <= 1);
      disposeFeatureSet(clean);
    });
  }

  it('augment: the fit batches are shifted and noised (weights differ from a run without), reproducibly, with no tensor left behind', async () => {
    const clean = bandedClips(60, 2);
    const runOnce = async (augment: boolean) => {
      const model = toyModel(4);
      const spec = getDefense('gnft');
      await spec.run(model, clean, {
        options: { ...spec.recipes.default, ...quick, augment },
        seed: 5,
        model: { ...toyInfo, timeAxis: { kind: 'features', stepsPerSecond: 100 } },
      });
      const weights = weightsOf(model);
      model.dispose();
      return weights;
    };
    const plain = await runOnce(false);
    const first = await runOnce(true);
    const live = memory().liveTensors;
    const second = await runOnce(true);
    assert.equal(memory().liveTensors, live, 'no tensor left behind');
    assert.deepEqual(second, first, 'the same seed gives the same augmented batches');
    assert.notDeepEqual(first, plain, 'augmentation changed what the defense saw');
    disposeFeatureSet(clean);
  });

  it("fp prunes the last conv layer's least active channels and the mask survives fine-tuning", async () => {
    const clean = bandedClips(60, 2);
    const model = toyModel(4);
    const report = await getDefense('fp').run(model, clean, {
      options: { ...getDefense('fp').recipes.default, ...quick, maxDrop: 0.5 },
      seed: 1,
      model: toyInfo,
    });
    const pruned = report.details.pruned as number[];
    assert.equal(report.details.layer, 'conv2');
    assert.ok(pruned.length > 0, 'with a 50% allowance something is pruned');
    const conv2 = model.conv2;
    const w = conv2.weight.toFloat32Array();
    const perChannel = w.length / 8;
    for (const c of pruned) {
      assert.ok(
        w.subarray(c * perChannel, (c + 1) * perChannel).every((v) => v === 0),
        `channel ${c} stays zero after fine-tuning`,
      );
      assert.ok((conv2.bias as Tensor).toArray()[c] === 0, `bias of channel ${c} stays zero`);
    }
    const kept = [...Array(8).keys()].filter((c) => !pruned.includes(c));
    assert.ok(
      kept.some((c) => w.subarray(c * perChannel, (c + 1) * perChannel).some((v) => v !== 0)),
      'the others train',
    );
    model.dispose();
    disposeFeatureSet(clean);
  });

  it('select=holdout-accuracy keeps the best epoch on the hold-out, which is never worse than the start', async () => {
    const clean = bandedClips(60, 2);
    const model = toyModel(4);
    const spec = getDefense('ft');
    const report = await spec.run(model, clean, {
      options: { ...spec.recipes.default, ...quick, epochs: 4, select: 'holdout-accuracy', lr: 0.5 },
      seed: 1,
      model: toyInfo,
    });
    const best = Math.max(report.holdoutBefore, ...report.epochs.map((e) => e.holdoutAccuracy));
    assert.equal(report.holdoutAfter, best);
    model.dispose();
    disposeFeatureSet(clean);
  });

  it('refuses clean sets and options it cannot work with', async () => {
    const tiny = bandedClips(6, 2);
    const model = toyModel();
    await assert.rejects(
      getDefense('gnft').run(model, tiny, { options: {}, seed: 0, model: toyInfo }),
      /gnft needs at least 10 clean clips, got 6; raise --clean-ratio/,
    );
    const clean = bandedClips(30, 2);
    await assert.rejects(getDefense('gnft').run(model, clean, { options: { r: -1 }, seed: 0, model: toyInfo }), /gnft: option r must be a number >= 0, got -1/);
    await assert.rejects(
      getDefense('gnft').run(model, clean, { options: { alpha: 2 }, seed: 0, model: toyInfo }),
      /gnft: option alpha must be a number >= 0 and <= 1, got 2/,
    );
    await assert.rejects(getDefense('fp').run(model, clean, { options: { holdout: 0 }, seed: 0, model: toyInfo }), /fp judges pruning on a clean hold-out/);
    model.dispose();
    disposeFeatureSet(tiny);
    disposeFeatureSet(clean);
  });
});
