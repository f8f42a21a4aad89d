// Optimizers against the update rules written out in plain JS (torch.optim's documented algorithms).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { memory, type Tensor, tensor, tidy } from '../../torch/index.ts';
import { parameter } from '../module.ts';
import { adam, adamW, clipGradNorm, cosineSchedule, sgd, stepSchedule } from './index.ts';

const start = [0.5, -1.5, 2];
const gradsAt = (step: number) => [0.1 * step, -0.2, 0.3 + step * 0.05];

function runOptimizer(make: (p: Tensor[]) => { step(): void }, steps: number): number[] {
  const p = parameter(tensor(start, undefined, { dtype: 'float64' }));
  const opt = make([p]);
  for (let s = 1; s <= steps; s++) {
    p.grad = tensor(gradsAt(s), undefined, { dtype: 'float64' });
    opt.step();
  }
  const out = p.toArray();
  p.dispose();
  return out;
}

function assertClose(actual: number[], expected: number[], tol = 1e-12) {
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]) < tol, `[${i}] ${a} vs ${expected[i]}`));
}

describe('optimizers follow torch.optim', () => {
  it('SGD with momentum, dampening, Nesterov and weight decay', () => {
    for (const o of [
      { lr: 0.1, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 },
      { lr: 0.1, momentum: 0.9, dampening: 0, nesterov: false, weightDecay: 0.01 },
      { lr: 0.05, momentum: 0.9, dampening: 0, nesterov: true, weightDecay: 0.001 },
      { lr: 0.05, momentum: 0.5, dampening: 0.2, nesterov: false, weightDecay: 0 },
    ]) {
      const theta = [...start];
      let buf: number[] | null = null;
      for (let s = 1; s <= 4; s++) {
        let g = gradsAt(s).map((v, i) => v + o.weightDecay * theta[i]);
        if (o.momentum) {
          buf = buf ? buf.map((b, i) => o.momentum * b + (1 - o.dampening) * g[i]) : [...g];
          const b = buf;
          g = o.nesterov ? g.map((v, i) => v + o.momentum * b[i]) : b;
        }
        for (let i = 0; i < 3; i++) theta[i] -= o.lr * g[i];
      }
      assertClose(
        runOptimizer((p) => sgd(p, o), 4),
        theta,
      );
    }
  });

  for (const decoupled of [false, true]) {
    it(decoupled ? 'AdamW' : 'Adam (with L2 weight decay)', () => {
      const lr = 0.01;
      const [b1, b2, eps, wd] = [0.9, 0.999, 1e-8, 0.1];
      const theta = [...start];
      const m = [0, 0, 0];
      const v = [0, 0, 0];
      for (let s = 1; s <= 5; s++) {
        let g = gradsAt(s);
        if (decoupled) for (let i = 0; i < 3; i++) theta[i] *= 1 - lr * wd;
        else g = g.map((x, i) => x + wd * theta[i]);
        for (let i = 0; i < 3; i++) {
          m[i] = b1 * m[i] + (1 - b1) * g[i];
          v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
          const denom = Math.sqrt(v[i]) / Math.sqrt(1 - b2 ** s) + eps;
          theta[i] -= (lr / (1 - b1 ** s)) * (m[i] / denom);
        }
      }
      const make = decoupled ? (p: Tensor[]) => adamW(p, { lr, weightDecay: wd }) : (p: Tensor[]) => adam(p, { lr, weightDecay: wd });
      assertClose(runOptimizer(make, 5), theta);
    });
  }

  it('optimizer state round trips (resume gives the same next step)', () => {
    const a = parameter(tensor(start, undefined, { dtype: 'float64' }));
    const b = parameter(tensor(start, undefined, { dtype: 'float64' }));
    const optA = adam([a], { lr: 0.1 });
    a.grad = tensor([1, 2, 3], undefined, { dtype: 'float64' });
    optA.step();
    tidy(() => b.copyFrom(a.data()));
    const optB = adam([b], { lr: 0.1 });
    optB.loadStateDict(optA.stateDict());
    for (const [p, o] of [
      [a, optA],
      [b, optB],
    ] as const) {
      p.grad = tensor([0.5, 0.5, 0.5], undefined, { dtype: 'float64' });
      o.step();
    }
    assert.deepEqual(a.toArray(), b.toArray());
  });

  it('clipGradNorm scales to the max norm and reports the norm before', () => {
    const p = parameter(tensor([0, 0]));
    const q = parameter(tensor([0]));
    p.grad = tensor([3, 4]);
    q.grad = tensor([12]);
    const total = clipGradNorm([p, q], 1.3);
    assert.ok(Math.abs(total - 13) < 1e-4);
    const g = [...(p.grad?.toArray() ?? []), ...(q.grad?.toArray() ?? [])];
    assert.ok(Math.abs(Math.hypot(...g) - 1.3) < 1e-4);
  });

  it('schedules', () => {
    const cos = cosineSchedule(1, 10);
    assert.equal(cos(0), 1);
    assert.ok(Math.abs(cos(5) - 0.5) < 1e-12);
    assert.ok(Math.abs(cos(10)) < 1e-12);
    const step = stepSchedule(1, 3, 0.1);
    assert.deepEqual(
      [0, 2, 3, 6].map(step).map((v) => Number(v.toFixed(6))),
      [1, 1, 0.1, 0.01],
    );
  });

  it('steps do not leak tensors', () => {
    const p = parameter(tensor([1, 2, 3]));
    const opt = adamW([p]);
    p.grad = tensor([1, 1, 1]);
    opt.step();
    const before = memory().liveTensors;
    for (let i = 0; i < 50; i++) opt.step();
    assert.equal(memory().liveTensors, before);
  });
});
