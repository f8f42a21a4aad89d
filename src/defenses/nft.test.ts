// NFT: only the masks train (every other tensor bit-identical until the fold), the fold reproduces the masked
// model's logits, the masks respect their per-layer clamp; LayerNorm masks for models without BatchNorm. The
// paper recipe as released: `steps` full batches drawn with replacement whatever the clip count, the stem
// BatchNorm unmasked, the cosine's floor of 0.02, a seeded per-clip time shift.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
// The shared defense toys under this file's short names.
import {
  stateArrays as arrays,
  seededToy as build,
  toyInfo as info,
  ToyConvTwoNorms as ToyConv,
  bandedClips as toySet,
  twoRunsNoLeak,
} from '../../test/helpers/defense-toys.ts';
import { randomTimeShift } from '../data/augment.ts';
import { disposeFeatureSet } from '../data/feature-set.ts';
import { createRng } from '../data/rng.ts';
import type { KwsModel } from '../models/registry.ts';
import { BatchNorm2d, Conv2d, LayerNorm, Linear, Module } from '../nn/index.ts';
import { noGrad, roll, type Tensor, tensor, tidy } from '../torch/index.ts';
import { drawnBatches } from './fine-tune.ts';
import { type DefenseEpoch, getDefense, type ModelInfo, maskFloor } from './index.ts';

/** A post-norm MLP over the 8 rows as tokens: LayerNorms, no BatchNorm (KWT's situation). */
class ToyTokens extends Module {
  embed = new Linear(8, 12);
  norm1 = new LayerNorm(12);
  mlp = new Linear(12, 12);
  norm2 = new LayerNorm(12);
  fc = new Linear(12, 3);
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const h = this.norm1.forward(this.embed.forward(x));
      const g = this.norm2.forward(h.add(this.mlp.forward(h).relu()));
      return this.fc.forward(g.mean(1));
    });
  }
}

/** ToyConv that records the batch size of every forward pass (the loop's one forward per step). */
class CountingConv extends ToyConv {
  batches: number[] = [];
  override forward(x: Tensor): Tensor {
    this.batches.push(x.size(0));
    return super.forward(x);
  }
}

class NoNorm extends Module {
  fc = new Linear(64, 3);
  forward(x: Tensor): Tensor {
    return this.fc.forward(x.flatten(1));
  }
}

const quick = { epochs: 3, batchSize: 16, lr: 0.5 };
const nft = getDefense('nft');

/** Logits in eval mode, every module's mode restored. */
function evalLogits(model: KwsModel, x: Tensor): number[] {
  const modes = model.modules().map((m) => m.training);
  model.eval();
  try {
    return noGrad(() => tidy(() => model.forward(x).toArray()));
  } finally {
    model.modules().forEach((m, i) => {
      m.training = modes[i];
    });
  }
}

describe('nft', () => {
  it('trains only the masks (all else bit-identical), folds them into gamma exactly, and keeps them within their clamp', async () => {
    const clean = toySet(60, 2);
    const model = build(() => new ToyConv(), 4);
    const before = arrays(model);
    const probe = toySet(9, 7);
    let checked = 0;
    let maskedLogits: number[] = [];
    const report = await nft.run(model, clean, {
      options: { ...nft.recipes.default, ...quick },
      seed: 5,
      model: info,
      progress: {
        epoch(row: DefenseEpoch) {
          // during training: every tensor but the masks is the one the model started with
          for (const [name, t] of model.stateDict()) {
            if (name.endsWith('.nft_mask')) continue;
            assert.deepEqual(Array.from(t.toFloat32Array()), before.get(name), `${name} untouched during epoch ${row.epoch}`);
          }
          checked += 1;
          if (row.epoch === row.epochs - 1) maskedLogits = evalLogits(model, probe.features);
        },
      },
    });
    assert.equal(checked, quick.epochs);
    const masks = report.details.masks as { layer: string; floor: number; values: number[] }[];
    assert.deepEqual(
      masks.map((m) => m.layer),
      ['bn1', 'bn2'],
    );
    assert.ok(Math.abs(masks[0].floor - 0.8 * Math.exp(-0.5)) < 1e-12 && Math.abs(masks[1].floor - 0.8 * Math.exp(-1)) < 1e-12);
    for (const m of masks) for (const v of m.values) assert.ok(v >= Math.fround(m.floor) && v <= 1, `${m.layer} mask ${v} within [${m.floor}, 1]`);
    assert.ok(
      masks.some((m) => m.values.some((v) => v < 1)),
      'the masks moved',
    );
    // after: an ordinary model whose gammas are gamma * m, everything else as it was
    const after = arrays(model);
    assert.deepEqual([...after.keys()], [...before.keys()], 'no mask left in the state dict');
    for (const [name, values] of after) {
      const mask = masks.find((m) => `${m.layer}.weight` === name);
      const expected = mask ? (before.get(name) as number[]).map((g, c) => Math.fround(g * mask.values[c])) : before.get(name);
      assert.deepEqual(values, expected, name);
    }
    assert.ok(
      model.parameters().every((p) => p.requiresGrad),
      'parameters unfrozen',
    );
    const folded = evalLogits(model, probe.features);
    assert.deepEqual(folded, maskedLogits, 'the folded model computes the masked logits exactly');
    model.dispose();
    disposeFeatureSet(clean);
    disposeFeatureSet(probe);
  });

  it('the same seed gives bit-identical weights; memory is flat', async () => {
    const clean = toySet(45, 3);
    const runOnce = async () => {
      const model = build(() => new ToyConv(), 1);
      await nft.run(model, clean, { options: { ...nft.recipes.default, ...quick }, seed: 2, model: info });
      const w = arrays(model);
      model.dispose();
      return w;
    };
    const { first, second } = await twoRunsNoLeak(runOnce);
    assert.deepEqual(second, first);
    disposeFeatureSet(clean);
  });

  it('masks LayerNorm scales in a model without BatchNorm, and refuses a model with neither', async () => {
    const clean = toySet(45, 3);
    const model = build(() => new ToyTokens(), 2);
    const tokensInfo: ModelInfo = { name: 'tokens', neuronLayers: ['embed', 'mlp'] };
    assert.equal(nft.modelProblem?.(model, tokensInfo), null);
    const report = await nft.run(model, clean, { options: { ...nft.recipes.default, ...quick }, seed: 2, model: tokensInfo });
    const masks = report.details.masks as { layer: string; kind: string; values: number[] }[];
    assert.deepEqual(
      masks.map((m) => [m.layer, m.kind, m.values.length]),
      [
        ['norm1', 'layer-norm', 12],
        ['norm2', 'layer-norm', 12],
      ],
    );
    const bare = build(() => new NoNorm(), 0);
    const bareInfo: ModelInfo = { name: 'bare', neuronLayers: [] };
    assert.match(nft.modelProblem?.(bare, bareInfo) ?? '', /nft masks the per-channel scales of BatchNorm layers .* model 'bare' has neither/);
    await assert.rejects(nft.run(bare, clean, { options: nft.recipes.default, seed: 0, model: bareInfo }), /model 'bare' has neither/);
    model.dispose();
    bare.dispose();
    disposeFeatureSet(clean);
  });

  it('mask floors follow mu_l = 0.8 e^(-0.5 l); bad options are refused by name', async () => {
    assert.deepEqual(
      [0, 1, 2].map((l) => maskFloor(l, 0.8, 0.5).toFixed(3)),
      ['0.485', '0.294', '0.179'],
    );
    const clean = toySet(30, 1);
    const model = build(() => new ToyConv(), 0);
    await assert.rejects(
      nft.run(model, clean, { options: { floorAlpha: 2 }, seed: 0, model: info }),
      /nft: option floorAlpha must be a number >= 0 and <= 1, got 2/,
    );
    await assert.rejects(nft.run(model, clean, { options: { clipNorm: 1 }, seed: 0, model: info }), /nft: unknown option clipNorm/);
    const tiny = toySet(6, 1);
    await assert.rejects(nft.run(model, tiny, { options: {}, seed: 0, model: info }), /nft needs at least 10 clean clips, got 6; raise --clean-ratio/);
    disposeFeatureSet(tiny);
    model.dispose();
    disposeFeatureSet(clean);
  });

  describe('paper recipe (the release, nazmul-karim170/NFT @9e40cacf53)', () => {
    it("holds the release's values: 1000 steps of 128 with replacement in blocks of 200, lr 0.05 to a floor of 0.02, stem unmasked, shift", () => {
      const r = nft.recipes.paper;
      assert.deepEqual(
        [r.steps, r.sampling, r.blockSteps, r.batchSize, r.lr, r.schedule, r.minLr, r.maskStem, r.timeShift, r.batchNorm, r.holdout],
        [1000, 'replacement', 200, 128, 0.05, 'cosine', 0.02, false, 0.125, 'train', 0],
      );
      assert.equal(nft.recipes.default.steps, undefined, 'the default recipe still counts epochs');
    });

    it('makes exactly `steps` updates of full batches drawn with replacement, whatever the number of clean clips', async () => {
      const options = { ...nft.recipes.paper, steps: 7, batchSize: 16 };
      const weights: Map<string, number[]>[] = [];
      for (const clips of [12, 45, 45]) {
        const clean = toySet(clips, 3);
        const model = build(() => new CountingConv(), 1);
        let updates = 0;
        const report = await nft.run(model, clean, {
          options,
          seed: 2,
          model: info,
          progress: {
            step(phase) {
              if (phase === 'nft') updates += 1;
            },
          },
        });
        assert.equal(updates, 7, `${clips} clips: 7 updates`);
        assert.equal(report.details.steps, 7);
        // one forward a step, each on a full batch of 16: from 12 clips that needs clips drawn twice
        assert.deepEqual(model.batches, new Array(7).fill(16), `${clips} clips: 7 batches of 16`);
        assert.equal(report.epochs.length, 1, 'one block (of up to 200 steps)');
        weights.push(arrays(model));
        model.dispose();
        disposeFeatureSet(clean);
      }
      assert.deepEqual(weights[2], weights[1], 'the same seed gives the same weights (draws, shifts, MixUp)');
      const draws = drawnBatches(12, 16, 3, 9);
      assert.deepEqual(drawnBatches(12, 16, 3, 9), draws, 'draws are seeded');
      assert.ok(
        draws.every((b) => b.length === 16 && b.every((i) => i >= 0 && i < 12) && new Set(b).size < 16),
        'full batches, in range, with repeats',
      );
      await assert.rejects(
        nft.run(
          build(() => new ToyConv(), 1),
          toySet(12, 3),
          { options: { ...options, steps: 0 }, seed: 0, model: info },
        ),
        /sampling=replacement draws `steps` batches; set steps above 0/,
      );
    });

    it('leaves the stem BatchNorm unmasked (the default masks it); the floors count from the first masked layer', async () => {
      const clean = toySet(30, 2);
      const masked = async (recipe: 'paper' | 'default') => {
        const model = build(() => new ToyConv(), 4);
        const before = arrays(model);
        const report = await nft.run(model, clean, {
          options: { ...nft.recipes[recipe], steps: 4, epochs: 2, batchSize: 16 },
          seed: 5,
          model: info,
        });
        const after = arrays(model);
        model.dispose();
        return { masks: report.details.masks as { layer: string; floor: number; values: number[] }[], before, after };
      };
      const paper = await masked('paper');
      assert.deepEqual(
        paper.masks.map((m) => [m.layer, m.floor.toFixed(3)]),
        [['bn2', '0.485']],
        'paper: bn2 only, with the first floor 0.8 e^-0.5',
      );
      assert.deepEqual(paper.after.get('bn1.weight'), paper.before.get('bn1.weight'), 'paper: the stem scale is not folded');
      assert.ok(
        paper.masks[0].values.some((v) => v < 1),
        'paper: the masks moved',
      );
      const byDefault = await masked('default');
      assert.deepEqual(
        byDefault.masks.map((m) => [m.layer, m.floor.toFixed(3)]),
        [
          ['bn1', '0.485'],
          ['bn2', '0.294'],
        ],
      );
      // a model whose only norm layer is its stem has nothing left to mask
      class StemOnly extends Module {
        conv = new Conv2d(1, 4, 3, { padding: 1 });
        bn = new BatchNorm2d(4);
        fc = new Linear(4 * 64, 3);
        forward(x: Tensor): Tensor {
          return tidy(() =>
            this.fc.forward(
              this.bn
                .forward(this.conv.forward(x.unsqueeze(1)))
                .relu()
                .flatten(1),
            ),
          );
        }
      }
      // LayerNorm models (KWT) have no stem norm: the paper recipe masks all of them
      const tokens = build(() => new ToyTokens(), 2);
      const tokenReport = await nft.run(tokens, clean, { options: { ...nft.recipes.paper, steps: 2 }, seed: 0, model: info });
      assert.deepEqual(
        (tokenReport.details.masks as { layer: string }[]).map((m) => m.layer),
        ['norm1', 'norm2'],
      );
      tokens.dispose();
      const stemOnly = build(() => new StemOnly(), 0);
      await assert.rejects(nft.run(stemOnly, clean, { options: nft.recipes.paper, seed: 0, model: info }), /maskStem=false leaves no norm layer to mask/);
      assert.ok(
        stemOnly.parameters().every((p) => p.requiresGrad),
        'nothing left frozen',
      );
      stemOnly.dispose();
      disposeFeatureSet(clean);
    });

    it("runs the release's cosine over its blocks, floored at 0.02 (the default falls towards 0)", async () => {
      const clean = toySet(30, 2);
      const model = build(() => new ToyConv(), 4);
      const report = await nft.run(model, clean, { options: { ...nft.recipes.paper, steps: 10, blockSteps: 2, batchSize: 8 }, seed: 1, model: info });
      // PyTorch CosineAnnealingLR(T_max 5, eta_min 0.02) from 0.05, stepped after each of the 5 blocks
      const release = [0, 1, 2, 3, 4].map((i) => 0.02 + ((0.05 - 0.02) * (1 + Math.cos((Math.PI * i) / 5))) / 2);
      assert.deepEqual(
        report.epochs.map((e) => e.lr.toFixed(6)),
        release.map((v) => v.toFixed(6)),
      );
      assert.ok(release[4] > 0.0228 && release[4] < 0.0229);
      assert.equal(report.details.steps, 10, '5 blocks of 2 steps');
      const uneven = await nft.run(model, clean, { options: { ...nft.recipes.paper, steps: 7, blockSteps: 3, batchSize: 8 }, seed: 1, model: info });
      assert.deepEqual([uneven.details.steps, uneven.epochs.length], [7, 3], '7 steps: blocks of 3, 3 and 1');
      const fallen = await nft.run(model, clean, { options: { ...nft.recipes.default, epochs: 5, batchSize: 8 }, seed: 1, model: info });
      assert.ok(fallen.epochs[4].lr < 0.005, `default: the last epoch at ${fallen.epochs[4].lr}`);
      model.dispose();
      disposeFeatureSet(clean);
    });

    it('time shift: every clip rolled along time by its own seeded shift within 12.5%, in place, shape kept', () =>
      tidy(() => {
        const [batch, frames, coefficients] = [6, 16, 3];
        const x = tensor(
          Float32Array.from({ length: batch * frames * coefficients }, (_, i) => i),
          [batch, frames, coefficients],
        );
        const shifted = randomTimeShift(x, 0.125, createRng(7));
        assert.deepEqual(shifted.shape, x.shape);
        assert.deepEqual(randomTimeShift(x, 0.125, createRng(7)).toArray(), shifted.toArray(), 'seeded');
        assert.notDeepEqual(randomTimeShift(x, 0.125, createRng(8)).toArray(), shifted.toArray(), 'another seed, other shifts');
        const shifts = [...Array(batch).keys()].map((b) => {
          const clip = x.select(0, b);
          const out = JSON.stringify(shifted.select(0, b).toArray());
          // clip b is still at index b (its label still applies), rolled by some s in [-2, 2] (round(0.125 * 16))
          const s = [-2, -1, 0, 1, 2].find((k) => JSON.stringify(roll(clip, [k], [0]).toArray()) === out);
          assert.notEqual(s, undefined, `clip ${b} is a time roll of itself by at most 2 frames`);
          return s;
        });
        assert.ok(new Set(shifts).size > 1, `clips get their own shifts: ${shifts}`);
        assert.equal(randomTimeShift(x, 0, createRng(7)), x, 'fraction 0: the batch as it is');
        const wave = tensor(
          Float32Array.from({ length: 2 * 800 }, (_, i) => Math.sin(i)),
          [2, 800],
        );
        assert.deepEqual(randomTimeShift(wave, 0.125, createRng(1)).shape, [2, 800], 'waveform batches [B, T] too');
      }));
  });
});
