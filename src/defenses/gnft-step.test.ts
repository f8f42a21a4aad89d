import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BatchNorm1d, Linear, Module, parameter, sgd, withFrozenBatchNormStats } from '../nn/index.ts';
import { addInPlace, crossEntropy, grad, keep, manualSeed, memory, noGrad, norm, randn, sum, type Tensor, tensor, tidy } from '../torch/index.ts';
import { gradNormPenaltyExactStep, gradNormPenaltyStep } from './gnft-step.ts';

class Net extends Module {
  fc1 = new Linear(5, 8);
  bn = new BatchNorm1d(8);
  fc2 = new Linear(8, 3);
  forward(x: Tensor): Tensor {
    return this.fc2.forward(this.bn.forward(this.fc1.forward(x)).relu());
  }
}

function setup() {
  manualSeed(3);
  const model = new Net();
  const x = keep(randn([16, 5]));
  const y = keep(tensor(new BigInt64Array(16).map((_, i) => BigInt(i % 3))));
  return { model, x, y, lossFn: () => crossEntropy(model.forward(x), y) };
}

const snapshot = (m: Module) => new Map([...m.stateDict()].map(([k, v]) => [k, v.toArray()]));

describe('GN-FT step', () => {
  it('sets grad = (1-a) g1 + a g2 with g2 at theta + r g1_k/|g1_k|, restores theta, and lets only the first pass move BN stats', () => {
    const { model, lossFn } = setup();
    const reference = setup(); // same seed: identical weights and batch
    const r = 0.05;
    const alpha = 0.7;
    // Expected gradient, computed step by step on the twin model.
    const params = reference.model.parameters();
    const expected = tidy(() => {
      const g1 = grad(reference.lossFn(), params);
      noGrad(() => params.forEach((p, k) => addInPlace(p, g1[k] as Tensor, r / (norm(g1[k] as Tensor).item() + 1e-12))));
      const g2 = withFrozenBatchNormStats(reference.model, () => grad(reference.lossFn(), params));
      return g1.map((g, k) =>
        (g as Tensor)
          .mul(1 - alpha)
          .add(g2[k] as Tensor, alpha)
          .toArray(),
      );
    });
    const before = snapshot(model);
    const optimizer = sgd(model.parameters(), { lr: 0 }); // lr 0: the step must leave theta exactly as it was
    gradNormPenaltyStep(model, optimizer, lossFn, { r, alpha });
    model.parameters().forEach((p, k) => {
      const g = p.grad?.toArray() ?? [];
      g.forEach((v, i) => assert.ok(Math.abs(v - expected[k][i]) < 1e-6, `param ${k}[${i}]: ${v} vs ${expected[k][i]}`));
    });
    const after = snapshot(model);
    for (const name of ['fc1.weight', 'fc1.bias', 'bn.weight', 'fc2.weight']) assert.deepEqual(after.get(name), before.get(name), `${name} restored exactly`);
    // BN running stats: exactly one update (the unperturbed pass).
    const once = setup();
    tidy(() => void once.lossFn());
    assert.deepEqual(after.get('bn.running_mean'), snapshot(once.model).get('bn.running_mean'));
    assert.deepEqual(after.get('bn.num_batches_tracked'), [1]);
  });

  it('alpha 0 is plain fine-tuning', () => {
    const { model, lossFn } = setup();
    const expected = tidy(() => grad(lossFn(), model.parameters()).map((g) => (g as Tensor).toArray()));
    // the plain gradient above moved BN stats once; that does not change the gradient of the next pass
    gradNormPenaltyStep(model, sgd(model.parameters(), { lr: 0 }), lossFn, { alpha: 0 });
    model.parameters().forEach((p, k) => (p.grad?.toArray() ?? []).forEach((v, i) => assert.ok(Math.abs(v - expected[k][i]) < 1e-6)));
  });

  it('lowers the loss over steps and keeps the live tensor count constant over 1,000 steps', () => {
    const { model, lossFn } = setup();
    const optimizer = sgd(model.parameters(), { lr: 0.05, momentum: 0.9 });
    const first = gradNormPenaltyStep(model, optimizer, lossFn);
    const live = memory().liveTensors;
    let last = first;
    for (let i = 0; i < 1000; i++) last = gradNormPenaltyStep(model, optimizer, lossFn);
    assert.ok(last < first, `loss ${first} -> ${last}`);
    assert.equal(memory().liveTensors, live);
  });
});

/** L(w) = 0.5 a w0^2 + 0.5 b w1^2 + c w0^2 w1^2 / 2 on two scalar parameters (float64): gradients and Hessian by hand. */
class TwoParameters extends Module {
  w0 = parameter(tensor([0.8], undefined, { dtype: 'float64' }));
  w1 = parameter(tensor([-0.5], undefined, { dtype: 'float64' }));
  loss(): Tensor {
    const [a, b, c] = [1.5, 4, 0.7];
    const w0 = this.w0;
    const w1 = this.w1;
    return sum(
      w0
        .square()
        .mul(0.5 * a)
        .add(w1.square().mul(0.5 * b))
        .add(
          w0
            .square()
            .mul(w1.square())
            .mul(c / 2),
        ),
    );
  }
}
const [A, B, C] = [1.5, 4, 0.7];
const gradAt = (w0: number, w1: number) => [A * w0 + C * w0 * w1 * w1, B * w1 + C * w0 * w0 * w1];

describe('GN-FT step on a two-parameter model, by hand', () => {
  it('global normalisation: g = (1 - a) g1 + a g2(theta + r g1 / |g1|), then an SGD step', () => {
    const model = new TwoParameters();
    const [r, alpha, lr] = [0.1, 0.7, 0.05];
    const [w0, w1] = [0.8, -0.5];
    const g1 = gradAt(w0, w1);
    const n = Math.hypot(...g1);
    const g2 = gradAt(w0 + (r * g1[0]) / n, w1 + (r * g1[1]) / n);
    const g = g1.map((v, i) => (1 - alpha) * v + alpha * g2[i]);
    gradNormPenaltyStep(model, sgd(model.parameters(), { lr }), () => model.loss(), { r, alpha, normalization: 'global' });
    assert.ok(Math.abs(model.w0.item() - (w0 - lr * g[0])) < 1e-12, `w0 ${model.w0.item()} vs ${w0 - lr * g[0]}`);
    assert.ok(Math.abs(model.w1.item() - (w1 - lr * g[1])) < 1e-12);
  });

  it('per-tensor normalisation moves each tensor by r along its own gradient', () => {
    const model = new TwoParameters();
    const [r, alpha] = [0.1, 0.7];
    const g1 = gradAt(0.8, -0.5);
    // each scalar tensor moves by r * sign(g)
    const g2 = gradAt(0.8 + r * Math.sign(g1[0]), -0.5 + r * Math.sign(g1[1]));
    gradNormPenaltyStep(model, sgd(model.parameters(), { lr: 0 }), () => model.loss(), { r, alpha, normalization: 'per-tensor' });
    assert.ok(Math.abs((model.w0.grad as Tensor).item() - ((1 - alpha) * g1[0] + alpha * g2[0])) < 1e-12);
    assert.ok(Math.abs((model.w1.grad as Tensor).item() - ((1 - alpha) * g1[1] + alpha * g2[1])) < 1e-12);
  });

  it('the exact gradient is g1 + lambda H g1 / |g1|, and the finite difference approaches it as r -> 0', () => {
    const [w0, w1] = [0.8, -0.5];
    const g1 = gradAt(w0, w1);
    const n = Math.hypot(...g1);
    const hessian = [
      [A + C * w1 * w1, 2 * C * w0 * w1],
      [2 * C * w0 * w1, B + C * w0 * w0],
    ];
    const hg = [0, 1].map((i) => (hessian[i][0] * g1[0] + hessian[i][1] * g1[1]) / n);
    const penaltyPart = (normalization: 'global' | 'per-tensor', r: number, exact: boolean) => {
      const model = new TwoParameters();
      const alpha = 0.7;
      (exact ? gradNormPenaltyExactStep : gradNormPenaltyStep)(model, sgd(model.parameters(), { lr: 0 }), () => model.loss(), { r, alpha, normalization });
      // (g - g1) / lambda: the penalty's gradient as each method estimates it
      return [model.w0, model.w1].map((p, i) => ((p.grad as Tensor).item() - g1[i]) / (alpha * r));
    };
    const exact = penaltyPart('global', 0.05, true);
    exact.forEach((v, i) => assert.ok(Math.abs(v - hg[i]) < 1e-10, `exact H g/|g| [${i}]: ${v} vs ${hg[i]}`));
    const errors = [1e-1, 1e-2, 1e-3].map((r) => Math.hypot(...penaltyPart('global', r, false).map((v, i) => v - exact[i])));
    assert.ok(errors[1] < errors[0] / 5 && errors[2] < errors[1] / 5, `finite-difference error should shrink with r: ${errors}`);
    // per-tensor: the penalty is sum_k |g_k|, whose gradient is H sign(g) here (scalar tensors)
    const hs = [0, 1].map((i) => hessian[i][0] * Math.sign(g1[0]) + hessian[i][1] * Math.sign(g1[1]));
    penaltyPart('per-tensor', 0.05, true).forEach((v, i) => assert.ok(Math.abs(v - hs[i]) < 1e-9, `per-tensor exact [${i}]`));
    const e = Math.hypot(...penaltyPart('per-tensor', 1e-4, false).map((v, i) => v - hs[i]));
    assert.ok(e < 1e-3, `per-tensor finite difference at r 1e-4: error ${e}`);
  });

  it('rejects a negative radius and alpha outside [0, 1]', () => {
    const model = new TwoParameters();
    const opt = sgd(model.parameters(), { lr: 0 });
    assert.throws(() => gradNormPenaltyStep(model, opt, () => model.loss(), { r: -0.1 }), /radius r must be >= 0, got -0.1/);
    assert.throws(() => gradNormPenaltyStep(model, opt, () => model.loss(), { alpha: 1.5 }), /alpha must be in \[0, 1\], got 1.5/);
  });
});
