// End-to-end engine checks: a small model learns, and 1,000 training steps hold memory constant.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adam, Linear, Module, sgd } from '../src/nn/index.ts';
import { trainStep } from '../src/nn/train-step.ts';
import { argmax, crossEntropy, eq, keep, manualSeed, memory, noGrad, randn, type Tensor, tensor, tidy } from '../src/torch/index.ts';

class Mlp extends Module {
  fc1 = new Linear(2, 32);
  fc2 = new Linear(32, 32);
  fc3 = new Linear(32, 3);
  forward(x: Tensor): Tensor {
    return this.fc3.forward(this.fc2.forward(this.fc1.forward(x).relu()).relu());
  }
}

/** Three interleaved spiral arms: not linearly separable. */
function spirals(n: number, seed: number): { x: Tensor; y: Tensor } {
  let s = seed;
  const rand = () => {
    s = (s * 1664525 + 1013904223) % 4294967296;
    return s / 4294967296;
  };
  const xs = new Float32Array(n * 2);
  const ys = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    const arm = i % 3;
    const r = rand();
    const angle = (arm * 2 * Math.PI) / 3 + r * 3 + (rand() - 0.5) * 0.3;
    xs[2 * i] = r * Math.cos(angle);
    xs[2 * i + 1] = r * Math.sin(angle);
    ys[i] = BigInt(arm);
  }
  return { x: keep(tensor(xs, [n, 2])), y: keep(tensor(ys)) };
}

const accuracy = (m: Module & { forward(x: Tensor): Tensor }, x: Tensor, y: Tensor) =>
  noGrad(() =>
    tidy(() =>
      eq(argmax(m.forward(x), 1), y)
        .to('float32')
        .mean()
        .item(),
    ),
  );

describe('training', () => {
  it('a small model learns a toy task to high accuracy', () => {
    manualSeed(1);
    const train = spirals(600, 1);
    const test = spirals(300, 2);
    const model = new Mlp();
    const optimizer = adam(model.parameters(), { lr: 0.01 });
    for (let step = 0; step < 600; step++) trainStep(optimizer, () => crossEntropy(model.forward(train.x), train.y));
    const acc = accuracy(model, test.x, test.y);
    assert.ok(acc > 0.9, `test accuracy ${acc}`);
    model.dispose();
  });

  it('1,000 training steps inside tidy keep the live tensor count constant', () => {
    manualSeed(2);
    const model = new Mlp();
    const optimizer = sgd(model.parameters(), { lr: 0.01, momentum: 0.9 });
    const x = keep(randn([32, 2]));
    const y = keep(tensor(new BigInt64Array(32).map((_, i) => BigInt(i % 3))));
    trainStep(optimizer, () => crossEntropy(model.forward(x), y)); // creates the momentum buffers
    const before = memory();
    for (let step = 0; step < 1000; step++) trainStep(optimizer, () => crossEntropy(model.forward(x), y));
    const after = memory();
    assert.equal(after.liveTensors, before.liveTensors);
    assert.equal(after.liveBytes, before.liveBytes);
    model.dispose();
  });
});
