// CLP: data-free; finds the Conv -> BatchNorm pairs by running the model; prunes a channel planted with an
// outsized Lipschitz bound, and only it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { twoRunsNoLeak } from '../../test/helpers/defense-toys.ts';
import { disposeFeatureSet, makeFeatureSet } from '../data/feature-set.ts';
import type { KwsModel } from '../models/registry.ts';
import { BatchNorm2d, Conv2d, Linear, Module } from '../nn/index.ts';
import { avgPool2d, manualSeed, mulInPlace, narrow, noGrad, relu, type Tensor, tidy, zeros } from '../torch/index.ts';
import { channelLipschitz, convBatchNormPairs, getDefense, type ModelInfo } from './index.ts';

/** conv1 -> bn1 -> relu -> conv2 -> relu -> bn2 (as Small CNN orders it) -> pool -> fc; 16 channels each. */
class ToyConv extends Module {
  conv1 = new Conv2d(1, 16, 3, { padding: 1 });
  bn1 = new BatchNorm2d(16);
  conv2 = new Conv2d(16, 16, 3, { padding: 1 });
  bn2 = new BatchNorm2d(16);
  fc = new Linear(16 * 4 * 4, 3);
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const h = this.bn2.forward(relu(this.conv2.forward(relu(this.bn1.forward(this.conv1.forward(x.unsqueeze(1)))))));
      return this.fc.forward(avgPool2d(h, 2).flatten(1));
    });
  }
}

/** Fields declared out of forward order, a conv whose output no BatchNorm reads, and a BatchNorm after a BatchNorm. */
class Shuffled extends Module {
  bnB = new BatchNorm2d(4);
  convB = new Conv2d(4, 4, 1);
  bnA = new BatchNorm2d(4);
  convA = new Conv2d(1, 4, 3, { padding: 1 });
  convC = new Conv2d(4, 8, 1);
  bnC = new BatchNorm2d(8);
  bnD = new BatchNorm2d(8);
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const a = this.bnA.forward(this.convA.forward(x.unsqueeze(1)));
      const b = this.bnB.forward(this.convB.forward(a));
      const c = this.convC.forward(b);
      return this.bnD.forward(this.bnC.forward(c)).mean([1, 2, 3]).unsqueeze(1);
    });
  }
}

class NoBatchNorm extends Module {
  fc = new Linear(64, 3);
  forward(x: Tensor): Tensor {
    return this.fc.forward(x.flatten(1));
  }
}

const clp = getDefense('clp');
const info: ModelInfo = { name: 'toy', neuronLayers: ['conv1', 'conv2'] };
/** What a data-free defense receives: no clip at all, only the shape of one. */
const noData = () => makeFeatureSet(zeros([0, 8, 8]), [], ['a', 'b', 'c']);
const arrays = (m: Module) => new Map([...m.stateDict()].map(([k, v]) => [k, Array.from(v.toFloat32Array())]));

/** Largest singular value of a [rows, cols] matrix (row-major) by power iteration on M^T M, in float64. */
function spectralNorm(m: number[], rows: number, cols: number): number {
  let v = Array.from({ length: cols }, (_, i) => 1 + i / cols);
  let sigma = 0;
  for (let it = 0; it < 500; it++) {
    const mv = Array.from({ length: rows }, (_, r) => v.reduce((s, vi, c) => s + m[r * cols + c] * vi, 0));
    const mtmv = v.map((_, c) => mv.reduce((s, x, r) => s + m[r * cols + c] * x, 0));
    const n = Math.hypot(...mtmv);
    v = mtmv.map((x) => x / n);
    sigma = Math.sqrt(n);
  }
  return sigma;
}

describe('clp', () => {
  it('given no data, prunes exactly the channel planted with an outsized Lipschitz bound', async () => {
    manualSeed(2);
    const model = new ToyConv() as unknown as ToyConv & KwsModel;
    // channel 5 of conv1: its kernel 40 times larger
    noGrad(() => tidy(() => mulInPlace(narrow(model.conv1.weight, 0, 5, 1), 40)));
    const before = arrays(model);
    const clean = noData();
    const report = await clp.run(model, clean, { options: clp.recipes.default, seed: 0, model: info });
    assert.equal(report.cleanClips, 0);
    const layers = report.details.layers as { conv: string; batchNorm: string; direct: boolean; pruned: number[]; uclc: number[] }[];
    assert.deepEqual(
      layers.map((l) => [l.conv, l.batchNorm, l.direct, l.pruned]),
      [
        ['conv1', 'bn1', true, [5]],
        ['conv2', 'bn2', false, []],
      ],
    );
    // UCLC as defined: sigma_max of the channel's kernel [in, kh*kw] times |gamma / sqrt(var)| (here 1)
    const w = before.get('conv2.weight') as number[];
    const k = 3;
    assert.ok(Math.abs(layers[1].uclc[k] - spectralNorm(w.slice(k * 144, (k + 1) * 144), 16, 9)) < 1e-4, `UCLC of conv2 channel ${k}`);
    for (const [name, values] of arrays(model)) {
      const expected = (before.get(name) as number[]).map((v, c) => ((name === 'bn1.weight' || name === 'bn1.bias') && c === 5 ? 0 : v));
      assert.deepEqual(values, expected, name);
    }
    model.dispose();
    disposeFeatureSet(clean);
  });

  it('pairs each BatchNorm with the conv that ran just before it, in forward order', () => {
    manualSeed(0);
    const model = new Shuffled() as unknown as KwsModel;
    const probe = zeros([2, 8, 8]);
    const { pairs, unpaired } = convBatchNormPairs(model, probe);
    assert.deepEqual(pairs, [
      { conv: 'convA', batchNorm: 'bnA', direct: true },
      { conv: 'convB', batchNorm: 'bnB', direct: true },
      { conv: 'convC', batchNorm: 'bnC', direct: true },
    ]);
    assert.deepEqual(unpaired, ['bnD']);
    assert.ok(model.training, 'training mode restored');
    probe.dispose();
    model.dispose();
  });

  it('UCLC scales with |gamma / sigma| of the BatchNorm', () => {
    manualSeed(1);
    const model = new ToyConv();
    const plain = channelLipschitz(model.conv1, model.bn1);
    noGrad(() => {
      mulInPlace(model.bn1.weight, -3);
      mulInPlace(model.bn1.running_var, 4);
    });
    channelLipschitz(model.conv1, model.bn1).forEach((v, c) => assert.ok(Math.abs(v - plain[c] * 1.5) < 1e-5 * plain[c]));
    model.dispose();
  });

  it('refuses models without Conv -> BN pairs in modelProblem; memory stays flat', async () => {
    const bare = new NoBatchNorm() as unknown as KwsModel;
    assert.match(
      clp.modelProblem?.(bare, { name: 'lstm', neuronLayers: [] }) ?? '',
      /clp prunes the channels of convolutions followed by BatchNorm .* model 'lstm' has neither convolutions nor BatchNorm layers/,
    );
    const clean = noData();
    await assert.rejects(
      clp.run(bare, clean, { options: {}, seed: 0, model: { name: 'lstm', neuronLayers: [] } }),
      /model 'lstm' has neither convolutions nor BatchNorm layers/,
    );
    await assert.rejects(clp.run(bare, clean, { options: { u: -1 }, seed: 0, model: info }), /model 'toy' has neither/);
    manualSeed(3);
    const model = new ToyConv() as unknown as KwsModel;
    await assert.rejects(clp.run(model, clean, { options: { u: -1 }, seed: 0, model: info }), /clp: option u must be a number >= 0, got -1/);
    await twoRunsNoLeak(() => clp.run(model, clean, { options: clp.recipes.default, seed: 0, model: info }));
    model.dispose();
    bare.dispose();
    disposeFeatureSet(clean);
  });
});
