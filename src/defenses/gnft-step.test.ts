import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BatchNorm1d, Linear, Module, sgd, withFrozenBatchNormStats } from '../nn/index.ts';
import { addInPlace, crossEntropy, grad, keep, manualSeed, memory, noGrad, norm, randn, type Tensor, tensor, tidy } from '../torch/index.ts';
import { gradNormPenaltyStep } from './gnft-step.ts';

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

  it('lowers the loss over steps and keeps memory flat', () => {
    const { model, lossFn } = setup();
    const optimizer = sgd(model.parameters(), { lr: 0.05, momentum: 0.9 });
    const first = gradNormPenaltyStep(model, optimizer, lossFn);
    const live = memory().liveTensors;
    let last = first;
    for (let i = 0; i < 50; i++) last = gradNormPenaltyStep(model, optimizer, lossFn);
    assert.ok(last < first, `loss ${first} -> ${last}`);
    assert.equal(memory().liveTensors, live);
  });
});
