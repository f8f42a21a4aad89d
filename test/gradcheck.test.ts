// Gradients of the engine's ops and layers against central finite differences (float64), and exact
// Hessian-vector products (grad with createGraph) against analytic Hessians.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MultiheadAttention } from '../src/nn/layers/attention.ts';
import { LSTM } from '../src/nn/layers/lstm.ts';
import { TransformerEncoderLayer } from '../src/nn/layers/transformer.ts';
import { isBuffer, type Module, parameter } from '../src/nn/module.ts';
import {
  batchNorm,
  conv1d,
  conv2d,
  dot,
  grad,
  layerNorm,
  linear,
  lstm,
  manualSeed,
  matmul,
  memory,
  noGrad,
  randn,
  sum,
  type Tensor,
  tensor,
  tidy,
} from '../src/torch/index.ts';

const f64 = { dtype: 'float64' } as const;
const randn64 = (shape: number[]) => randn(shape, f64);

export interface FiniteDifferenceOptions {
  /** central-difference step (default 1e-6) */
  eps?: number;
  /** allowed |analytic - numeric| / (1 + |numeric|) (default 1e-6) */
  tol?: number;
}

/**
 * Checks d/d(inputs) of a random projection <fn(...inputs), w> from grad() against central finite
 * differences, element by element. The inputs must be float64 leaves; they are perturbed in place (and
 * restored), so fn may also read them through a closure (module parameters). Returns the largest error.
 */
function finiteDifferenceCheck(fn: (...inputs: Tensor[]) => Tensor, inputs: Tensor[], opts: FiniteDifferenceOptions = {}): number {
  const eps = opts.eps ?? 1e-6;
  const tol = opts.tol ?? 1e-6;
  for (const t of inputs) assert.equal(t.dtype, 'float64', 'finite differences need float64 inputs');
  return tidy(() => {
    const saved = inputs.map((t) => t.requiresGrad);
    for (const t of inputs) t.requiresGrad = true;
    const out = fn(...inputs);
    const projection = randn64(out.shape);
    const analytic = grad(sum(out.mul(projection)), inputs).map((g, i) => {
      assert.ok(g, `input ${i} has no gradient`);
      return g.toArray();
    });
    inputs.forEach((t, i) => {
      t.requiresGrad = saved[i];
    });
    const objective = () => noGrad(() => tidy(() => sum(fn(...inputs).mul(projection)).item()));
    let worst = 0;
    inputs.forEach((t, i) => {
      const original = t.data() as Float64Array;
      const work = Float64Array.from(original);
      for (let j = 0; j < work.length; j++) {
        work[j] = original[j] + eps;
        t.copyFrom(work);
        const plus = objective();
        work[j] = original[j] - eps;
        t.copyFrom(work);
        const minus = objective();
        work[j] = original[j];
        const numeric = (plus - minus) / (2 * eps);
        const error = Math.abs(analytic[i][j] - numeric) / (1 + Math.abs(numeric));
        worst = Math.max(worst, error);
        assert.ok(error <= tol, `input ${i} [${j}]: analytic ${analytic[i][j]} vs numeric ${numeric}`);
      }
      t.copyFrom(original);
    });
    return worst;
  });
}

/** Replaces a module's parameters (and float buffers) by float64 copies, keeping their roles. */
function toFloat64<M extends Module>(module: M): M {
  for (const [, m] of module.namedModules()) {
    const fields = m as unknown as Record<string, unknown>;
    for (const [key, value] of Object.entries(m)) {
      const t = value as Tensor;
      if (typeof value !== 'object' || value === null || (value as { isTensorMarker?: boolean }).isTensorMarker !== true || isBuffer(t)) continue;
      const copy = noGrad(() => t.to('float64').detach());
      fields[key] = parameter(copy);
      t.dispose();
    }
  }
  return module;
}

describe('gradients match central finite differences (float64)', () => {
  manualSeed(2024);

  it('finiteDifferenceCheck catches a wrong gradient', () => {
    const x = randn64([4]);
    // detach() hides the dependence on the second factor: the analytic gradient is half the truth
    assert.throws(() => finiteDifferenceCheck((a) => a.mul(a.detach()), [x]), /analytic .* vs numeric/);
    x.dispose();
  });

  it('conv2d (stride, padding, dilation, groups)', () => {
    const inputs = [randn64([2, 4, 6, 5]), randn64([6, 2, 3, 3]), randn64([6])];
    finiteDifferenceCheck((x, w, b) => conv2d(x, w, b, { stride: [2, 1], padding: 1, dilation: [1, 2], groups: 2 }), inputs);
    for (const t of inputs) t.dispose();
  });

  it('conv1d', () => {
    const inputs = [randn64([2, 3, 9]), randn64([4, 3, 3]), randn64([4])];
    finiteDifferenceCheck((x, w, b) => conv1d(x, w, b, { stride: 2, padding: 1 }), inputs);
    for (const t of inputs) t.dispose();
  });

  it('linear', () => {
    const inputs = [randn64([3, 2, 5]), randn64([4, 5]), randn64([4])];
    finiteDifferenceCheck((x, w, b) => linear(x, w, b), inputs);
    for (const t of inputs) t.dispose();
  });

  it('lstm (fused aten::lstm: two layers, bidirectional, batch first; input, state and weights)', () => {
    const [input, hidden] = [3, 2];
    const weights: Tensor[] = [];
    for (let layer = 0; layer < 2; layer++) {
      for (let direction = 0; direction < 2; direction++) {
        const layerInput = layer === 0 ? input : 2 * hidden;
        weights.push(
          randn64([4 * hidden, layerInput]).mul(0.5),
          randn64([4 * hidden, hidden]).mul(0.5),
          randn64([4 * hidden]).mul(0.5),
          randn64([4 * hidden]).mul(0.5),
        );
      }
    }
    const inputs = [randn64([2, 4, input]), randn64([4, 2, hidden]), randn64([4, 2, hidden]), ...weights];
    finiteDifferenceCheck((x, h0, c0, ...params) => {
      const { output, h, c } = lstm(x, {
        hx: [h0, c0],
        params,
        hasBiases: true,
        numLayers: 2,
        dropout: 0,
        training: true,
        bidirectional: true,
        batchFirst: true,
      });
      // every output of the op takes part
      return output.sum().add(h.mul(c).sum()).reshape([1]);
    }, inputs);
    for (const t of inputs) t.dispose();
  });

  it('layer_norm (over the last two dims, with affine parameters)', () => {
    const inputs = [randn64([3, 4, 5]), randn64([4, 5]), randn64([4, 5])];
    finiteDifferenceCheck((x, w, b) => layerNorm(x, [4, 5], w, b, 1e-5), inputs);
    for (const t of inputs) t.dispose();
  });

  it('batch_norm in training mode (batch statistics)', () => {
    const inputs = [randn64([4, 3, 2, 3]), randn64([3]), randn64([3])];
    finiteDifferenceCheck((x, w, b) => batchNorm(x, { weight: w, bias: b, training: true, eps: 1e-5 }), inputs);
    for (const t of inputs) t.dispose();
  });

  it('LSTM, MultiheadAttention and TransformerEncoderLayer modules in float64 (input and every parameter)', () => {
    const rnn = toFloat64(new LSTM(3, 2, { batchFirst: true }));
    const x = randn64([2, 3, 3]);
    finiteDifferenceCheck((input) => rnn.forward(input), [x, ...rnn.parameters()]);

    const attn = toFloat64(new MultiheadAttention(4, 2));
    tidy(() => (attn.in_proj_bias as Tensor).copyFrom(randn64([12]).data())); // PyTorch starts it at zero
    const [q, kv] = [randn64([3, 2, 4]), randn64([5, 2, 4])];
    const padding = tensor([false, false, false, true, true, false, false, false, false, false], [2, 5]);
    finiteDifferenceCheck((query, keyValue) => attn.forward(query, keyValue, keyValue, { keyPaddingMask: padding }).output, [q, kv, ...attn.parameters()]);

    const layer = toFloat64(new TransformerEncoderLayer(4, 2, { dimFeedforward: 6, activation: 'gelu', normFirst: true })).eval();
    finiteDifferenceCheck((src) => layer.forward(src), [randn64([3, 2, 4]), ...layer.parameters()]);
    for (const t of [x, q, kv, padding]) t.dispose();
    rnn.dispose();
    attn.dispose();
    layer.dispose();
  });
});

describe('exact Hessian-vector products through grad(..., { createGraph: true })', () => {
  /** H v for f at x: the gradient of <grad f(x), v>. */
  const hvp = (f: (x: Tensor) => Tensor, x: Tensor, v: Tensor): number[] =>
    tidy(() => {
      const [g] = grad(f(x), [x], { createGraph: true });
      const [hv] = grad(sum((g as Tensor).mul(v)), [x]);
      return (hv as Tensor).toArray();
    });

  const close = (actual: number[], expected: number[], tol: number) =>
    actual.forEach((a, i) => {
      assert.ok(Math.abs(a - expected[i]) <= tol * (1 + Math.abs(expected[i])), `[${i}]: ${a} vs ${expected[i]}`);
    });

  it('f(x) = x^T A x: H = A + A^T (every column recovered from H e_i)', () => {
    const n = 4;
    const A = [0.5, -1, 2, 0.25, 3, 1.5, -0.75, 0, -2, 0.1, 0.3, 1, 0.6, -0.2, 0.9, -1.1];
    const a = tensor(A, [n, n], f64);
    const x = tensor([0.3, -1.2, 2, 0.7], [n], { ...f64, requiresGrad: true });
    const f = (t: Tensor) => dot(t, matmul(a, t));
    for (let i = 0; i < n; i++) {
      const e = tensor(
        Array.from({ length: n }, (_, j) => (j === i ? 1 : 0)),
        [n],
        f64,
      );
      const column = Array.from({ length: n }, (_, r) => A[r * n + i] + A[i * n + r]);
      close(hvp(f, x, e), column, 1e-14);
      e.dispose();
    }
    a.dispose();
    x.dispose();
  });

  it('f(x) = (|x|^2)^2: H = 4|x|^2 I + 8 x x^T', () => {
    const xs = [0.5, -1, 2, 0.25, 1.5];
    const vs = [1, 0.2, -0.3, 2, -1];
    const x = tensor(xs, [5], { ...f64, requiresGrad: true });
    const v = tensor(vs, [5], f64);
    const s = xs.reduce((acc, t) => acc + t * t, 0);
    const xv = xs.reduce((acc, t, i) => acc + t * vs[i], 0);
    close(
      hvp((t) => t.square().sum().square(), x, v),
      xs.map((xi, i) => 4 * s * vs[i] + 8 * xi * xv),
      1e-13,
    );
    x.dispose();
    v.dispose();
  });

  it('through the fused LSTM op: H v equals a central difference of gradients', () => {
    manualSeed(5);
    const x = randn64([4, 2, 3]);
    const hx = [randn64([1, 2, 2]), randn64([1, 2, 2])];
    const w = randn64([8, 3]).mul(0.5);
    const rest = [randn64([8, 2]), randn64([8]), randn64([8])];
    w.requiresGrad = true;
    const f = (weight: Tensor) =>
      lstm(x, {
        hx: hx as [Tensor, Tensor],
        params: [weight, ...rest],
        hasBiases: true,
        numLayers: 1,
        dropout: 0,
        training: true,
        bidirectional: false,
        batchFirst: false,
      })
        .output.square()
        .sum();
    const v = randn64([8, 3]);
    const exact = hvp(f, w, v);
    const eps = 1e-5;
    const gradAt = (shift: number) =>
      tidy(() => {
        const shifted = noGrad(() => w.add(v.mul(shift)));
        shifted.requiresGrad = true;
        return (grad(f(shifted), [shifted])[0] as Tensor).toArray();
      });
    const plus = gradAt(eps);
    const minus = gradAt(-eps);
    close(
      exact,
      plus.map((p, i) => (p - minus[i]) / (2 * eps)),
      1e-7,
    );
    for (const t of [x, ...hx, w, ...rest, v]) t.dispose();
  });

  it('leaves no tensors behind', () => {
    const before = memory().liveTensors;
    const x = tensor([1, 2, 3], [3], { ...f64, requiresGrad: true });
    const v = tensor([1, 0, -1], [3], f64);
    for (let i = 0; i < 3; i++) hvp((t) => t.pow(3).sum(), x, v);
    x.dispose();
    v.dispose();
    assert.equal(memory().liveTensors, before);
  });
});
