// NFT: only the masks train (every other tensor bit-identical until the fold), the fold reproduces the masked
// model's logits, the masks respect their per-layer clamp; LayerNorm masks for models without BatchNorm.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
// The shared defense toys under this file's short names.
import {
  stateArrays as arrays,
  seededToy as build,
  toyInfo as info,
  ToyConvTwoNorms as ToyConv,
  bandedClips as toySet,
} from '../../test/helpers/defense-toys.ts';
import { disposeFeatureSet } from '../data/feature-set.ts';
import type { KwsModel } from '../models/registry.ts';
import { LayerNorm, Linear, Module } from '../nn/index.ts';
import { memory, noGrad, type Tensor, tidy } from '../torch/index.ts';
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
    const first = await runOnce();
    const live = memory().liveTensors;
    const second = await runOnce();
    assert.equal(memory().liveTensors, live, 'no tensor left behind by a run');
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
});
