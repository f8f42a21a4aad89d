// Per-neuron gradient norms against a hand computation (a two-layer MLP with fixed weights, backprop
// written out in plain numbers), LSTM units against their four gate rows, and the model left unchanged.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeFeatureSet } from '../data/feature-set.ts';
import type { KwsModel } from '../models/registry.ts';
import { Linear, LSTM, Module } from '../nn/index.ts';
import { abs, crossEntropy, grad, manualSeed, relu, type Tensor, tensor, tidy } from '../torch/index.ts';
import { neuronGradients } from './gradients.ts';

class Mlp extends Module {
  hidden = new Linear(3, 2);
  fc = new Linear(2, 2);
  forward(x: Tensor): Tensor {
    return tidy(() => this.fc.forward(relu(this.hidden.forward(x))));
  }
}

const W1 = [
  [0.5, -0.3, 0.8],
  [-0.6, 0.4, 0.2],
];
const b1 = [0.1, 0.05];
const W2 = [
  [0.7, -0.5],
  [-0.2, 0.9],
];
const b2 = [0, 0.1];

/** dL/dW1 of the batch-mean cross-entropy, by hand. */
function handGradient(xs: number[][], ys: number[]): number[][] {
  const g = W1.map((row) => row.map(() => 0));
  for (let i = 0; i < xs.length; i++) {
    const pre = W1.map((row, n) => row.reduce((s, w, j) => s + w * xs[i][j], b1[n]));
    const h = pre.map((v) => Math.max(0, v));
    const logits = W2.map((row, c) => row.reduce((s, w, n) => s + w * h[n], b2[c]));
    const m = Math.max(...logits);
    const e = logits.map((l) => Math.exp(l - m));
    const z = e.reduce((a, b) => a + b, 0);
    const delta = e.map((v, c) => (v / z - (c === ys[i] ? 1 : 0)) / xs.length);
    for (let n = 0; n < 2; n++) {
      const dh = delta.reduce((s, d, c) => s + d * W2[c][n], 0) * (pre[n] > 0 ? 1 : 0);
      for (let j = 0; j < 3; j++) g[n][j] += dh * xs[i][j];
    }
  }
  return g;
}

describe('per-neuron gradient norms', () => {
  it('equal the L1 and L2 norms of a hand-computed gradient, averaged over batches', () => {
    const model = new Mlp();
    model.hidden.weight.copyFrom(Float32Array.from(W1.flat()));
    model.hidden.bias?.copyFrom(Float32Array.from(b1));
    model.fc.weight.copyFrom(Float32Array.from(W2.flat()));
    model.fc.bias?.copyFrom(Float32Array.from(b2));
    const xs = [
      [1, 2, -1],
      [0.5, -1, 2],
      [-1, 0.3, 0.7],
      [2, 1, 1],
      [0.2, 0.2, -2],
    ];
    const ys = [0, 1, 1, 0, 1];
    const set = makeFeatureSet(tensor(Float32Array.from(xs.flat()), [5, 3]), ys, ['p', 'q']);
    const [result] = neuronGradients(model as unknown as KwsModel, ['hidden'], set, { batchSize: 2 });
    assert.equal(result.batches, 3);
    const batches = [[0, 1], [2, 3], [4]].map((idx) =>
      handGradient(
        idx.map((i) => xs[i]),
        idx.map((i) => ys[i]),
      ),
    );
    for (let n = 0; n < 2; n++) {
      const l1 = batches.map((g) => g[n].reduce((s, v) => s + Math.abs(v), 0));
      const l2 = batches.map((g) => Math.sqrt(g[n].reduce((s, v) => s + v * v, 0)));
      const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
      const variance = (v: number[]) => v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / (v.length - 1);
      const got = result.neurons[n];
      assert.ok(Math.abs(got.l1Mean - mean(l1)) < 1e-6, `l1 mean of neuron ${n}: ${got.l1Mean} vs ${mean(l1)}`);
      assert.ok(Math.abs(got.l1Variance - variance(l1)) < 1e-6);
      assert.ok(Math.abs(got.l2Mean - mean(l2)) < 1e-6);
      assert.ok(Math.abs(got.l2Variance - variance(l2)) < 1e-6);
      assert.ok(got.l1Mean > 0);
    }
    assert.equal(model.training, true, 'the mode is restored');
    set.features.dispose();
    set.labels.dispose();
    model.dispose();
  });

  it("an LSTM unit's norm covers its four gate rows of weight_ih and weight_hh", () => {
    manualSeed(3);
    class Net extends Module {
      lstm = new LSTM(4, 5, { numLayers: 1, batchFirst: true });
      fc = new Linear(5, 2);
      forward(x: Tensor): Tensor {
        return tidy(() => {
          const out = this.lstm.forward(x);
          return this.fc.forward(out.select(1, out.size(1) - 1));
        });
      }
    }
    const model = new Net();
    const set = makeFeatureSet(
      tensor(
        Float32Array.from({ length: 6 * 3 * 4 }, (_, i) => Math.sin(i)),
        [6, 3, 4],
      ),
      [0, 1, 0, 1, 1, 0],
      ['p', 'q'],
    );
    const [result] = neuronGradients(model as unknown as KwsModel, ['lstm.l0'], set, { batchSize: 6 });
    const expected = tidy(() => {
      const loss = crossEntropy(model.forward(set.features), set.labels);
      const params = new Map(model.namedParameters());
      const [gih, ghh] = grad(loss, [params.get('lstm.weight_ih_l0') as Tensor, params.get('lstm.weight_hh_l0') as Tensor]) as Tensor[];
      return Array.from({ length: 5 }, (_, n) =>
        [0, 1, 2, 3].reduce(
          (s, gate) =>
            s +
            abs(gih.select(0, gate * 5 + n))
              .sum()
              .item() +
            abs(ghh.select(0, gate * 5 + n))
              .sum()
              .item(),
          0,
        ),
      );
    });
    result.neurons.forEach((s, n) => assert.ok(Math.abs(s.l1Mean - expected[n]) < 1e-6 * (1 + expected[n]), `unit ${n}`));
    model.dispose();
  });
});
