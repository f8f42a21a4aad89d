import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as T from './index.ts';

const close = (actual: number[], expected: number[], tol = 1e-5) => {
  assert.equal(actual.length, expected.length, `length ${actual.length} vs ${expected.length}`);
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])), `[${i}] ${a} vs ${expected[i]}`));
};

describe('ops give known values', () => {
  it('elementwise math and broadcasting', () => {
    T.tidy(() => {
      const a = T.tensor([1, 2, 3, 4], [2, 2]);
      const b = T.tensor([10, 20], [1, 2]);
      close(a.add(b).toArray(), [11, 22, 13, 24]);
      close(a.mul(2).sub(1).toArray(), [1, 3, 5, 7]);
      close(a.div(b).toArray(), [0.1, 0.1, 0.3, 0.2]);
      close(T.exp(T.tensor([0, 1])).toArray(), [1, Math.E]);
      close(T.sqrt(T.tensor([4, 9])).toArray(), [2, 3]);
      close(T.clamp(T.tensor([-2, 0.5, 3]), 0, 1).toArray(), [0, 0.5, 1]);
      close(T.gelu(T.tensor([1])).toArray(), [0.8413447]);
      close(T.where(T.tensor([1, 2, 3]).gt(1.5), 1, 0).toArray(), [0, 1, 1]);
    });
  });

  it('reductions', () => {
    T.tidy(() => {
      const a = T.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
      assert.equal(a.sum().item(), 21);
      close(a.sum(0).toArray(), [5, 7, 9]);
      close(a.mean(1).toArray(), [2, 5]);
      close(a.max(1).toArray(), [3, 6]);
      assert.deepEqual(a.argmax(1).toArray(), [2, 2]);
      close([a.norm().item()], [Math.sqrt(91)]);
      close(T.std(a, 1).toArray(), [1, 1]);
      close(T.logsumexp(T.tensor([0, 0]), 0).toArray(), [Math.log(2)]);
    });
  });

  it('matmul, linear and conv2d', () => {
    T.tidy(() => {
      const a = T.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
      const b = T.tensor([1, 0, 0, 1, 1, 1], [3, 2]);
      close(T.matmul(a, b).toArray(), [4, 5, 10, 11]);
      close(T.linear(a, b.transpose(0, 1), T.tensor([1, -1])).toArray(), [5, 4, 11, 10]);
      // 3x3 input of ones, 2x2 kernel of ones, no padding: every output is 4.
      const x = T.ones([1, 1, 3, 3]);
      const w = T.ones([1, 1, 2, 2]);
      close(T.conv2d(x, w).toArray(), [4, 4, 4, 4]);
      close(T.conv2d(x, w, null, { padding: 1 }).toArray(), [1, 2, 2, 1, 2, 4, 4, 2, 2, 4, 4, 2, 1, 2, 2, 1]);
      close(T.maxPool2d(T.arange(16, undefined, 1, { dtype: 'float32' }).reshape([1, 1, 4, 4]), 2).toArray(), [5, 7, 13, 15]);
    });
  });

  it('softmax and cross-entropy', () => {
    T.tidy(() => {
      const logits = T.tensor([1, 2, 3], [1, 3]);
      const e = [Math.exp(1), Math.exp(2), Math.exp(3)];
      const z = e[0] + e[1] + e[2];
      close(
        T.softmax(logits, 1).toArray(),
        e.map((v) => v / z),
      );
      const target = T.tensor([2], [1], { dtype: 'int64' });
      close([T.crossEntropy(logits, target).item()], [-Math.log(e[2] / z)]);
    });
  });

  it('shape ops', () => {
    T.tidy(() => {
      const a = T.arange(6, undefined, 1, { dtype: 'float32' }).reshape([2, 3]);
      assert.deepEqual(a.transpose(0, 1).shape, [3, 2]);
      assert.deepEqual(T.cat([a, a], 0).shape, [4, 3]);
      assert.deepEqual(T.stack([a, a], 0).shape, [2, 2, 3]);
      close(T.select(a, 0, 1).toArray(), [3, 4, 5]);
      close(T.narrow(a, 1, 1, 2).contiguous().toArray(), [1, 2, 4, 5]);
      close(T.indexSelect(a, 1, T.tensor([2, 0], [2], { dtype: 'int64' })).toArray(), [2, 0, 5, 3]);
      close(T.pad(T.ones([1, 2]), [1, 1]).toArray(), [0, 1, 1, 0]);
      assert.deepEqual(T.chunk(a, 3, 1).length, 3);
    });
  });

  it('stft of a pure tone peaks at its bin; eigh and svd reconstruct', () => {
    T.tidy(() => {
      const n = 1024;
      const tone = T.tensor(Float32Array.from({ length: n }, (_, i) => Math.sin((2 * Math.PI * 64 * i) / 256)));
      const spec = T.complexAbs(T.stft(tone, { nFft: 256, hopLength: 128, window: T.hannWindow(256) }));
      assert.deepEqual(spec.shape, [129, 9]);
      assert.equal(T.argmax(spec.mean(1)).item(), 64);
      const m = T.tensor([2, 1, 1, 2], [2, 2]);
      close(T.eigh(m).values.toArray(), [1, 3]);
      const { U, S, Vh } = T.svd(T.tensor([3, 0, 0, 4, 0, 0], [3, 2]));
      close(T.matmul(U.mul(S), Vh).toArray(), [3, 0, 0, 4, 0, 0], 1e-5);
    });
  });

  it('int64 data and dtypes round trip', () => {
    T.tidy(() => {
      const t = T.tensor(new BigInt64Array([1n, -2n, 3n]));
      assert.equal(t.dtype, 'int64');
      assert.deepEqual(t.toArray(), [1, -2, 3]);
      assert.equal(t.to('float64').dtype, 'float64');
      assert.equal(T.tensor([1.5, 2.5]).dtype, 'float32');
    });
  });
});

describe('errors are JS errors, never crashes', () => {
  it('shape mismatch names the op and the shapes', () => {
    assert.throws(
      () => T.tidy(() => T.matmul(T.ones([2, 3]), T.ones([4, 5]))),
      (e: Error) => e.message.includes('aten::matmul') && e.message.includes('[2, 3]') && e.message.includes('[4, 5]'),
    );
    assert.throws(() => T.tidy(() => T.conv2d(T.ones([1, 2, 5, 5]), T.ones([3, 1, 3, 3]))), /aten::conv2d/);
    assert.throws(() => T.tidy(() => T.indexSelect(T.ones([3]), 0, T.tensor([7], [1], { dtype: 'int64' }))), /index/i);
  });

  it('bad arguments are rejected with their name', () => {
    assert.throws(() => T.tidy(() => T.reshape(T.ones([2, 3]), [4, 4])), /aten::reshape.*shape '\[4, 4\]' is invalid/);
    assert.throws(() => T.tensor([1, 2, 3], [2, 2]), /holds 12 bytes but shape \[2, 2\]/);
    assert.throws(() => T.atenOp('aten::no_such_op'), /no ATen op aten::no_such_op/);
  });

  it('a disposed tensor throws a clear error', () => {
    const t = T.ones([2]);
    t.dispose();
    t.dispose();
    assert.equal(t.isDisposed, true);
    assert.throws(() => t.add(1), /disposed/);
    assert.throws(() => t.shape, /disposed/);
  });

  it('NaN survives as a value (checks happen where inputs enter, not in the engine)', () => {
    T.tidy(() => {
      const t = T.tensor([Number.NaN, 1]);
      assert.deepEqual(T.isnan(t).toArray(), [1, 0]);
    });
  });
});

describe('memory', () => {
  it('tidy frees what it does not return; keep and nested scopes', () => {
    const before = T.memory().liveTensors;
    const kept = T.tidy(() => {
      const a = T.ones([10]);
      const inner = T.tidy(() => {
        const b = a.mul(2);
        T.keep(T.ones([1]));
        return { b, list: [b.add(1)] };
      });
      assert.equal(inner.b.isDisposed, false);
      return inner.list[0];
    });
    assert.equal(kept.isDisposed, false);
    assert.equal(T.memory().liveTensors, before + 2); // kept result + the keep()'d one
    kept.dispose();
  });

  it('tidy rejects async functions', () => {
    assert.throws(() => T.tidy((async () => T.ones([1])) as never), /synchronous/);
  });

  it('using disposes at block end', () => {
    const before = T.memory().liveTensors;
    {
      using t = T.ones([3]);
      assert.equal(t.numel, 3);
    }
    assert.equal(T.memory().liveTensors, before);
  });

  it('memory() reports bytes', () => {
    const before = T.memory();
    const t = T.zeros([1000]);
    assert.equal(T.memory().liveBytes - before.liveBytes, 4000);
    t.dispose();
    assert.equal(T.memory().liveBytes, before.liveBytes);
  });
});

describe('autograd', () => {
  it('backward accumulates and grad does not', () => {
    T.tidy(() => {
      const x = T.tensor([1, 2, 3], undefined, { requiresGrad: true });
      const [g] = T.grad(x.mul(x).sum(), [x]);
      assert.deepEqual(g?.toArray(), [2, 4, 6]);
      assert.equal(x.grad, null);
      T.backward(x.mul(3).sum());
      T.backward(x.mul(3).sum());
      const accumulated = x.grad as T.Tensor | null;
      assert.deepEqual(accumulated?.toArray(), [6, 6, 6]);
    });
  });

  it('exact Hessian-vector product through createGraph', () => {
    T.tidy(() => {
      // f(x) = sum(x^3) -> H = diag(6x); Hv = 6 x * v
      const x = T.tensor([1, -2, 0.5], undefined, { requiresGrad: true, dtype: 'float64' });
      const v = T.tensor([0.3, 1, -4], undefined, { dtype: 'float64' });
      const [g] = T.grad(x.pow(3).sum(), [x], { createGraph: true });
      const [hv] = T.grad(T.dot(g as T.Tensor, v), [x]);
      close((hv as T.Tensor).toArray(), [6 * 1 * 0.3, 6 * -2 * 1, 6 * 0.5 * -4], 1e-12);
    });
  });

  it('noGrad records nothing and restores the mode', () => {
    T.tidy(() => {
      const x = T.ones([2], { requiresGrad: true });
      const y = T.noGrad(() => x.mul(2));
      assert.equal(y.requiresGrad, false);
      assert.equal(T.isGradEnabled(), true);
      assert.throws(
        () =>
          T.noGrad(() => {
            throw new Error('inner');
          }),
        /inner/,
      );
      assert.equal(T.isGradEnabled(), true);
    });
  });

  it('seeds make random numbers repeatable', () => {
    T.manualSeed(42);
    const a = T.tidy(() => T.randn([5]).toArray());
    T.manualSeed(42);
    const b = T.tidy(() => T.randn([5]).toArray());
    assert.deepEqual(a, b);
  });
});
