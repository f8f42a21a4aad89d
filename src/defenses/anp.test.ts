// ANP: the masks stay in [0, 1] and training them changes nothing in the model; pruning at a threshold zeroes
// exactly the channels at or below it; the threshold is a function of hold-out accuracies only.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bandedClips, seededToy, stateArrays, ToyConvTwoNorms, toyInfo, twoRunsNoLeak } from '../../test/helpers/defense-toys.ts';
import { disposeFeatureSet, subsetOf } from '../data/feature-set.ts';
import { accuracyAndLoss } from '../models/predict.ts';
import type { KwsModel } from '../models/registry.ts';
import { LayerNorm, Linear, Module } from '../nn/index.ts';
import { manualSeed, type Tensor, tidy } from '../torch/index.ts';
import { chooseThreshold, getDefense, holdoutIndices, maskableNorms, pruneByMask, thresholdGrid, trainAnpMasks } from './index.ts';

class ToyTokens extends Module {
  embed = new Linear(8, 12);
  norm = new LayerNorm(12);
  fc = new Linear(12, 3);
  forward(x: Tensor): Tensor {
    return tidy(() => this.fc.forward(this.norm.forward(this.embed.forward(x)).mean(1)));
  }
}

const anp = getDefense('anp');
const toy = (seed: number) => seededToy(() => new ToyConvTwoNorms(), seed);
const settings = { eps: 0.4, steps: 1, alpha: 0.2, iterations: 6, batchSize: 16, lr: 0.01, momentum: 0.9 };

describe('anp', () => {
  it('keeps the masks in [0, 1] and leaves every tensor of the model as it was', async () => {
    const clean = bandedClips(45, 2);
    const model = toy(1);
    const before = stateArrays(model);
    // a large learning rate drives masks against both bounds
    const { masks, losses } = await trainAnpMasks(model, maskableNorms(model), clean, { ...settings, lr: 5 }, 3);
    assert.deepEqual(
      masks.map((m) => m.length),
      [6, 8],
    );
    const all = masks.flat();
    assert.ok(
      all.every((m) => m >= 0 && m <= 1),
      `masks within [0, 1]: ${all}`,
    );
    assert.ok(
      all.some((m) => m === 0 || (m > 0 && m < 1)),
      'the masks moved',
    );
    assert.equal(losses.length, settings.iterations);
    assert.deepEqual(stateArrays(model), before, 'weights and BatchNorm statistics untouched by mask training');
    assert.ok(
      model.parameters().every((p) => p.requiresGrad),
      'parameters unfrozen',
    );
    model.dispose();
    disposeFeatureSet(clean);
  });

  it('pruning at a threshold zeroes gamma of exactly the channels whose mask is at or below it', () => {
    const model = toy(2);
    const norms = maskableNorms(model);
    const before = stateArrays(model);
    const masks = [
      [0, 0.2, 0.35, 0.2, 1, 0.9],
      [0.21, 0.19, 0.2, 0.5, 0, 0.7, 0.2, 1],
    ];
    const pruned = pruneByMask(norms, masks, 0.2);
    assert.deepEqual(pruned, [
      [0, 1, 3],
      [1, 2, 4, 6],
    ]);
    for (const [name, values] of stateArrays(model)) {
      const layer = ['bn1.weight', 'bn2.weight'].indexOf(name);
      const expected = layer < 0 ? before.get(name) : (before.get(name) as number[]).map((v, c) => (masks[layer][c] <= 0.2 ? 0 : v));
      assert.deepEqual(values, expected, name);
    }
    assert.deepEqual(thresholdGrid(0.05, 0.9).slice(0, 4), [0, 0.05, 0.1, 0.15]);
    assert.equal(thresholdGrid(0.05, 0.9).length, 19);
    model.dispose();
  });

  it('the threshold rule keeps the last threshold before the first hold-out failure', () => {
    const grid = [0, 0.05, 0.1, 0.15, 0.2];
    const run = (accuracies: number[]) => {
      const asked: number[] = [];
      const r = chooseThreshold(
        grid,
        (t) => {
          asked.push(t);
          return { pruned: asked.length, holdoutAccuracy: accuracies[grid.indexOf(t)] };
        },
        0.9,
      );
      return { threshold: r.threshold, asked: asked.length, trail: r.trail.length };
    };
    assert.deepEqual(run([1, 0.95, 0.92, 0.85, 0.95]), { threshold: 0.1, asked: 4, trail: 4 }, 'stops at the first failure, not the later recovery');
    assert.deepEqual(run([0.8, 1, 1, 1, 1]), { threshold: null, asked: 1, trail: 1 }, 'nothing pruned when already t = 0 fails');
    assert.deepEqual(run([1, 1, 0.9, 0.9, 0.9]), { threshold: 0.2, asked: 5, trail: 5 }, 'the floor itself passes');
  });

  it('chooses the threshold from hold-out accuracies alone, by the documented rule', async () => {
    const clean = bandedClips(60, 4);
    const model = toy(5);
    const options = { ...anp.recipes.default, iterations: 8, batchSize: 16, lr: 0.5, maxDrop: 0.3 };
    const report = await anp.run(model, clean, { options, seed: 7, model: toyInfo });
    const trail = report.details.trail as { threshold: number; pruned: number; holdoutAccuracy: number }[];
    const masks = report.details.masks as Record<string, number[]>;
    // the hold-out the defense used, rebuilt from the seed
    const split = holdoutIndices(clean.labelList, 0.2, 7);
    const holdout = subsetOf(clean, split.holdout);
    const fresh = toy(5);
    const start = accuracyAndLoss(fresh, holdout).accuracy;
    assert.equal(report.details.holdoutBeforePruning, start);
    // every accuracy in the trail is that of the original model pruned at that threshold, on the hold-out
    for (const row of trail) {
      const copy = toy(5);
      const count = pruneByMask(maskableNorms(copy), [masks.bn1, masks.bn2], row.threshold).flat().length;
      assert.equal(count, row.pruned);
      assert.equal(accuracyAndLoss(copy, holdout).accuracy, row.holdoutAccuracy, `threshold ${row.threshold}`);
      copy.dispose();
    }
    // the rule: the last threshold before the first that falls below (1 - maxDrop) of the start
    const floor = (1 - options.maxDrop) * start;
    const failed = trail.findIndex((r) => r.holdoutAccuracy < floor);
    assert.ok(failed === -1 || failed === trail.length - 1, 'the scan stops at the first failure');
    const expected = failed === -1 ? trail[trail.length - 1].threshold : failed === 0 ? null : trail[failed - 1].threshold;
    assert.equal(report.details.threshold, expected);
    const prunedNow = (report.details.pruned as Record<string, number[]>).bn1.length + (report.details.pruned as Record<string, number[]>).bn2.length;
    assert.equal(prunedNow, expected === null ? 0 : (trail.find((r) => r.threshold === expected)?.pruned ?? -1));
    assert.equal(report.holdoutAfter, expected === null ? start : trail.find((r) => r.threshold === expected)?.holdoutAccuracy);
    model.dispose();
    fresh.dispose();
    disposeFeatureSet(holdout);
    disposeFeatureSet(clean);
  });

  it('the same seed gives bit-identical weights; memory is flat; LayerNorm models run, models without norms are refused', async () => {
    const clean = bandedClips(45, 3);
    const runOnce = async () => {
      const model = toy(1);
      await anp.run(model, clean, { options: { ...anp.recipes.default, iterations: 5, batchSize: 16 }, seed: 2, model: toyInfo });
      const w = stateArrays(model);
      model.dispose();
      return w;
    };
    const { first, second } = await twoRunsNoLeak(runOnce);
    assert.deepEqual(second, first);
    manualSeed(0);
    const tokens = new ToyTokens() as unknown as KwsModel;
    const report = await anp.run(tokens, clean, {
      options: { ...anp.recipes.default, iterations: 3, batchSize: 16 },
      seed: 2,
      model: { name: 'tokens', neuronLayers: ['embed'] },
    });
    assert.deepEqual(Object.keys(report.details.masks as object), ['norm']);
    const bare = new (class extends Module {
      fc = new Linear(64, 3);
      forward(x: Tensor): Tensor {
        return this.fc.forward(x.flatten(1));
      }
    })() as unknown as KwsModel;
    assert.match(
      anp.modelProblem?.(bare, { name: 'lstm', neuronLayers: [] }) ?? '',
      /anp masks the per-channel scales of BatchNorm layers .* 'lstm' has neither/,
    );
    const model = toy(0);
    await assert.rejects(anp.run(model, clean, { options: { holdout: 0 }, seed: 0, model: toyInfo }), /anp chooses its pruning threshold on a clean hold-out/);
    await assert.rejects(anp.run(model, clean, { options: { eps: -1 }, seed: 0, model: toyInfo }), /anp: option eps must be a number >= 0, got -1/);
    for (const m of [tokens, bare, model]) m.dispose();
    disposeFeatureSet(clean);
  });
});
