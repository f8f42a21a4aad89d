// FT-SAM: rho 0 is plain fine-tuning (bit-identical to ft with the same settings and seed); one adaptive SAM
// step by hand; determinism and flat memory.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { disposeFeatureSet, type FeatureSet, makeFeatureSet } from '../data/feature-set.ts';
import { createRng } from '../data/rng.ts';
import type { KwsModel } from '../models/registry.ts';
import { BatchNorm2d, Conv2d, Linear, Module, parameter, sgd } from '../nn/index.ts';
import { avgPool2d, manualSeed, memory, sum, type Tensor, tensor, tidy } from '../torch/index.ts';
import { getDefense, gradNormPenaltyStep, type ModelInfo } from './index.ts';

function toySet(n: number, seed: number): FeatureSet {
  const rng = createRng(seed);
  const labels = Array.from({ length: n }, (_, i) => i % 3);
  const data = new Float32Array(n * 64);
  labels.forEach((label, i) => {
    for (let j = 0; j < 64; j++) data[i * 64 + j] = rng.normal() * 0.5 + (Math.floor(j / 8) % 3 === label ? 1.5 : 0);
  });
  return makeFeatureSet(tensor(data, [n, 8, 8]), labels, ['a', 'b', 'c']);
}

class ToyConv extends Module {
  conv1 = new Conv2d(1, 6, 3, { padding: 1 });
  bn1 = new BatchNorm2d(6);
  conv2 = new Conv2d(6, 8, 3, { padding: 1 });
  fc = new Linear(8 * 4 * 4, 3);
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const h = this.conv2.forward(this.bn1.forward(this.conv1.forward(x.unsqueeze(1))).relu()).relu();
      return this.fc.forward(avgPool2d(h, 2).flatten(1));
    });
  }
}

const info: ModelInfo = { name: 'toy', neuronLayers: ['conv1', 'conv2'] };
const quick = { epochs: 3, batchSize: 16, lr: 0.05, labelSmoothing: 0.1 };
const arrays = (m: Module) => [...m.stateDict()].map(([k, v]) => [k, Array.from(v.toFloat32Array())] as const);

async function purified(name: string, options: Record<string, number | string | boolean>, clean: FeatureSet) {
  manualSeed(4);
  const model = new ToyConv() as unknown as KwsModel;
  const spec = getDefense(name);
  const report = await spec.run(model, clean, { options: { ...spec.recipes.default, ...options }, seed: 5, model: info });
  const weights = arrays(model);
  model.dispose();
  return { report, weights };
}

describe('ft-sam', () => {
  it('rho 0 is plain fine-tuning: bit-identical to ft with the same settings and seed', async () => {
    const clean = toySet(60, 2);
    const sam = await purified('ft-sam', { ...quick, rho: 0 }, clean);
    const ft = await purified('ft', quick, clean);
    assert.deepEqual(sam.weights, ft.weights);
    const moved = await purified('ft-sam', quick, clean);
    assert.notDeepEqual(moved.weights, ft.weights, 'rho 2 is not');
    disposeFeatureSet(clean);
  });

  it('one adaptive SAM step by hand: the gradient at theta + rho theta^2 g / || |theta| g ||, applied at theta', () => {
    // L = 0.5 a w0^2 + 0.5 b w1^2 + c w0 w1 on two scalar parameters (float64)
    const [a, b, c] = [1.5, 4, 0.7];
    const gradAt = (w0: number, w1: number) => [a * w0 + c * w1, b * w1 + c * w0];
    const model = new (class extends Module {
      w0 = parameter(tensor([0.8], undefined, { dtype: 'float64' }));
      w1 = parameter(tensor([-0.5], undefined, { dtype: 'float64' }));
      loss(): Tensor {
        return sum(
          this.w0
            .square()
            .mul(0.5 * a)
            .add(this.w1.square().mul(0.5 * b))
            .add(this.w0.mul(this.w1).mul(c)),
        );
      }
    })();
    const [rho, lr] = [2, 0.1];
    const w = [0.8, -0.5];
    const g = gradAt(w[0], w[1]);
    const scaled = Math.hypot(Math.abs(w[0]) * g[0], Math.abs(w[1]) * g[1]);
    const e = w.map((wi, i) => (rho * wi * wi * g[i]) / scaled);
    const g2 = gradAt(w[0] + e[0], w[1] + e[1]);
    gradNormPenaltyStep(model, sgd(model.parameters(), { lr }), () => model.loss(), { r: rho, alpha: 1, normalization: 'adaptive' });
    assert.ok(Math.abs(model.w0.item() - (w[0] - lr * g2[0])) < 1e-12);
    assert.ok(Math.abs(model.w1.item() - (w[1] - lr * g2[1])) < 1e-12);
  });

  it('the same seed gives bit-identical weights; memory is flat; options are checked', async () => {
    const clean = toySet(45, 3);
    const first = await purified('ft-sam', quick, clean);
    const live = memory().liveTensors;
    const second = await purified('ft-sam', quick, clean);
    assert.equal(memory().liveTensors, live, 'no tensor left behind by a run');
    assert.deepEqual(second.weights, first.weights);
    assert.equal(getDefense('ft-sam').options.labelSmoothing.default, 0.1, '[BB] label smoothing');
    await assert.rejects(purified('ft-sam', { rho: -1 }, clean), /ft-sam: option rho must be a number >= 0, got -1/);
    disposeFeatureSet(clean);
  });
});
