import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { decode, type FixtureTensor, loadPyTorchState, maxAbsDiff } from '../../../test/helpers/layer-fixtures.ts';
import { backward, manualSeed, memory, noGrad, ones, randn, type Tensor, tensor, tidy, triu } from '../../torch/index.ts';
import { MultiheadAttention, type MultiheadAttentionOptions } from './attention.ts';

// ---- fixtures made by scripts/make-layer-fixture.py -----------------------------------------------
interface AttentionCase {
  name: string;
  embedDim: number;
  numHeads: number;
  options: Required<MultiheadAttentionOptions>;
  call: { selfAttention: boolean; sharedKeyValue?: boolean; averageAttnWeights: boolean };
  state: (FixtureTensor & { name: string })[];
  inputs: { query: FixtureTensor; key?: FixtureTensor; value?: FixtureTensor; keyPaddingMask?: FixtureTensor; attnMask?: FixtureTensor };
  outputs: { output: FixtureTensor; weights: FixtureTensor };
}

const fixture: { cases: AttentionCase[] } = JSON.parse(readFileSync(new URL('../../../fixtures/layers/attention.json', import.meta.url), 'utf8'));

describe('MultiheadAttention', () => {
  for (const c of fixture.cases) {
    it(`matches torch.nn.MultiheadAttention: ${c.name}`, () => {
      const m = new MultiheadAttention(c.embedDim, c.numHeads, c.options);
      loadPyTorchState(m, c.state);
      tidy(() => {
        m.eval();
        const query = decode(c.inputs.query);
        // self-attention passes one tensor three times (PyTorch projects it once); shared key/value twice
        const key = c.call.selfAttention ? query : decode(c.inputs.key as FixtureTensor);
        const value = c.call.selfAttention || c.call.sharedKeyValue ? key : decode(c.inputs.value as FixtureTensor);
        const { output, weights } = noGrad(() =>
          m.forward(query, key, value, {
            keyPaddingMask: c.inputs.keyPaddingMask && decode(c.inputs.keyPaddingMask),
            attnMask: c.inputs.attnMask && decode(c.inputs.attnMask),
            averageAttnWeights: c.call.averageAttnWeights,
          }),
        );
        assert.ok(maxAbsDiff(output, decode(c.outputs.output)) < 1e-4);
        assert.ok(maxAbsDiff(weights as Tensor, decode(c.outputs.weights)) < 1e-4);
      });
      m.dispose();
    });
  }

  it('initialises as PyTorch: xavier in_proj_weight, zero biases, Linear out_proj weight', () => {
    const m = new MultiheadAttention(32, 4);
    assert.deepEqual(
      [...m.stateDict()].map(([n, t]) => `${n}:${t.shape.join('x')}`),
      ['in_proj_weight:96x32', 'in_proj_bias:96', 'out_proj.weight:32x32', 'out_proj.bias:32'],
    );
    const xavier = Math.sqrt(6 / (32 + 96));
    const w = m.in_proj_weight.toArray();
    assert.ok(w.every((v) => Math.abs(v) <= xavier) && Math.max(...w) > 0.9 * xavier);
    assert.ok((m.in_proj_bias as Tensor).toArray().every((v) => v === 0));
    assert.ok((m.out_proj.bias as Tensor).toArray().every((v) => v === 0));
    assert.ok(m.out_proj.weight.toArray().every((v) => Math.abs(v) <= 1 / Math.sqrt(32)));
    assert.equal(m.parameters().length, 4);
    m.dispose();
    const noBias = new MultiheadAttention(8, 2, { bias: false });
    assert.deepEqual([...noBias.stateDict().keys()], ['in_proj_weight', 'out_proj.weight']);
    noBias.dispose();
    assert.throws(() => new MultiheadAttention(10, 3), /embedDim \(10\) must be divisible by numHeads \(3\)/);
  });

  it('output and weight shapes: sequence first, batch first, unbatched, per head, without weights', () => {
    const seqFirst = new MultiheadAttention(8, 2);
    const batchFirst = new MultiheadAttention(8, 2, { batchFirst: true });
    tidy(() => {
      const q = randn([4, 3, 8]);
      const kv = randn([6, 3, 8]);
      const a = seqFirst.forward(q, kv, kv);
      assert.deepEqual(a.output.shape, [4, 3, 8]);
      assert.deepEqual(a.weights?.shape, [3, 4, 6]);
      const perHead = seqFirst.forward(q, kv, kv, { averageAttnWeights: false });
      assert.deepEqual(perHead.weights?.shape, [3, 2, 4, 6]);
      const noWeights = seqFirst.forward(q, kv, kv, { needWeights: false });
      assert.equal(noWeights.weights, undefined);
      assert.ok(maxAbsDiff(noWeights.output, a.output) === 0);
      const b = batchFirst.forward(q.transpose(0, 1), kv.transpose(0, 1), kv.transpose(0, 1));
      assert.deepEqual(b.output.shape, [3, 4, 8]);
      const x = randn([5, 8]);
      const single = seqFirst.forward(x, x, x);
      assert.deepEqual(single.output.shape, [5, 8]);
      assert.deepEqual(single.weights?.shape, [5, 5]);
      assert.ok(maxAbsDiff(single.output, seqFirst.forward(x.unsqueeze(1), x.unsqueeze(1), x.unsqueeze(1)).output.squeeze(1)) < 1e-6);
    });
    seqFirst.dispose();
    batchFirst.dispose();
  });

  it('masks: padded keys and forbidden positions get zero weight; bad masks are named', () => {
    const m = new MultiheadAttention(8, 2, { batchFirst: true }).eval();
    tidy(() => {
      const x = randn([2, 5, 8]);
      const padding = tensor([false, false, false, false, false, false, false, true, true, true], [2, 5]);
      const causal = triu(ones([5, 5]), 1).gt(0);
      const { weights } = m.forward(x, x, x, { keyPaddingMask: padding, attnMask: causal });
      const w = (weights as Tensor).toArray();
      for (let b = 0; b < 2; b++) {
        for (let i = 0; i < 5; i++) {
          const row = w.slice((b * 5 + i) * 5, (b * 5 + i + 1) * 5);
          assert.ok(Math.abs(row.reduce((s, v) => s + v, 0) - 1) < 1e-5, 'rows sum to one');
          row.forEach((v, j) => {
            if (j > i || (b === 1 && j >= 2)) assert.equal(v, 0);
            else assert.ok(v > 0);
          });
        }
      }
      assert.throws(() => m.forward(x, x, x, { attnMask: ones([4, 5]).gt(0) }), /attnMask must be \[5, 5\] or \[4, 5, 5\], got \[4, 5\]/);
      assert.throws(() => m.forward(x, x, x, { keyPaddingMask: ones([2, 4]).gt(0) }), /keyPaddingMask must be \[2, 5\]/);
      assert.throws(
        () => m.forward(x, x, x, { keyPaddingMask: tensor([1, 0, 0, 0, 0, 1, 0, 0, 0, 0], [2, 5], { dtype: 'int64' }) }),
        /must be bool or floating point/,
      );
      assert.throws(() => m.forward(x, x, randn([2, 5, 6])), /value must be/);
    });
    m.dispose();
  });

  it('attention dropout acts only in training mode', () => {
    manualSeed(7);
    const m = new MultiheadAttention(8, 2, { dropout: 0.5 });
    tidy(() => {
      const x = randn([4, 2, 8]);
      const a = m.forward(x, x, x);
      assert.ok(
        (a.weights as Tensor).toArray().some((v) => v === 0),
        'dropped weights',
      );
      m.eval();
      assert.equal(maxAbsDiff(m.forward(x, x, x).output, m.forward(x, x, x).output), 0);
    });
    m.dispose();
  });

  it('repeated forward/backward inside tidy leaves the live tensor count unchanged', () => {
    const m = new MultiheadAttention(8, 2, { dropout: 0.1, batchFirst: true });
    const x = randn([3, 5, 8]);
    const padding = tensor([false, false, false, false, true, false, false, false, false, false, false, false, false, true, true], [3, 5]);
    const step = () =>
      tidy(() => {
        backward(m.forward(x, x, x, { keyPaddingMask: padding }).output.square().mean());
      });
    step();
    const live = memory().liveTensors;
    for (let i = 0; i < 5; i++) step();
    assert.equal(memory().liveTensors, live);
    tidy(() => assert.ok(m.parameters().every((p) => p.grad !== null)));
    m.dispose();
    x.dispose();
    padding.dispose();
  });
});
