// FT-SAM: rho 0 is plain fine-tuning (bit-identical to ft with the same settings and seed); one adaptive SAM
// step by hand; determinism and flat memory.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bandedClips, seededToy, stateArrays, ToyConv, toyInfo, twoRunsNoLeak } from '../../test/helpers/defense-toys.ts';
import { disposeFeatureSet, type FeatureSet } from '../data/feature-set.ts';
import { Module, parameter, sgd } from '../nn/index.ts';
import { sum, type Tensor, tensor } from '../torch/index.ts';
import { getDefense, gradNormPenaltyStep } from './index.ts';

const quick = { epochs: 3, batchSize: 16, lr: 0.05, labelSmoothing: 0.1 };

async function purified(name: string, options: Record<string, number | string | boolean>, clean: FeatureSet) {
  const model = seededToy(() => new ToyConv(), 4);
  const spec = getDefense(name);
  const report = await spec.run(model, clean, { options: { ...spec.recipes.default, ...options }, seed: 5, model: toyInfo });
  const weights = stateArrays(model);
  model.dispose();
  return { report, weights };
}

describe('ft-sam', () => {
  it('rho 0 is plain fine-tuning: bit-identical to ft with the same settings and seed', async () => {
    const clean = bandedClips(60, 2);
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
    const clean = bandedClips(45, 3);
    const { first, second } = await twoRunsNoLeak(() => purified('ft-sam', quick, clean));
    assert.deepEqual(second.weights, first.weights);
    assert.equal(getDefense('ft-sam').options.labelSmoothing.default, 0.1, '[BB] label smoothing');
    await assert.rejects(purified('ft-sam', { rho: -1 }, clean), /ft-sam: option rho must be a number >= 0, got -1/);
    disposeFeatureSet(clean);
  });
});
