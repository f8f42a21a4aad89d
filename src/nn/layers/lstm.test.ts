import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { decode, type FixtureTensor, loadPyTorchState, maxAbsDiff } from '../../../test/helpers/layer-fixtures.ts';
import { backward, manualSeed, memory, noGrad, randn, tidy } from '../../torch/index.ts';
import { Module } from '../module.ts';
import { Linear } from './linear.ts';
import { LSTM, type LSTMOptions } from './lstm.ts';

// ---- fixtures made by scripts/make-layer-fixture.py -----------------------------------------------
interface LstmCase {
  name: string;
  inputSize: number;
  hiddenSize: number;
  options: Required<LSTMOptions>;
  state: (FixtureTensor & { name: string })[];
  inputs: { x: FixtureTensor; h0?: FixtureTensor; c0?: FixtureTensor };
  outputs: { output: FixtureTensor; h: FixtureTensor; c: FixtureTensor };
}

const fixture: { cases: LstmCase[] } = JSON.parse(readFileSync(new URL('../../../fixtures/layers/lstm.json', import.meta.url), 'utf8'));

describe('LSTM', () => {
  for (const c of fixture.cases) {
    it(`matches torch.nn.LSTM: ${c.name}`, () => {
      const m = new LSTM(c.inputSize, c.hiddenSize, c.options);
      loadPyTorchState(m, c.state);
      tidy(() => {
        m.eval();
        const x = decode(c.inputs.x);
        const state = c.inputs.h0 && c.inputs.c0 ? { h: decode(c.inputs.h0), c: decode(c.inputs.c0) } : undefined;
        const out = noGrad(() => m.run(x, state));
        assert.ok(maxAbsDiff(out.output, decode(c.outputs.output)) < 1e-4);
        assert.ok(maxAbsDiff(out.h, decode(c.outputs.h)) < 1e-4);
        assert.ok(maxAbsDiff(out.c, decode(c.outputs.c)) < 1e-4);
        if (!state) assert.ok(maxAbsDiff(m.forward(x), out.output) === 0, 'forward is run().output');
      });
      m.dispose();
    });
  }

  it('initialises every weight and bias uniform in +-1/sqrt(hidden)', () => {
    const m = new LSTM(10, 16, { numLayers: 2 });
    const bound = 1 / Math.sqrt(16);
    const values = m.parameters().flatMap((p) => p.toArray());
    assert.ok(values.every((v) => Math.abs(v) <= bound));
    assert.ok(Math.max(...values) > 0.9 * bound && Math.min(...values) < -0.9 * bound, 'spread over the interval');
    assert.deepEqual(
      m.namedParameters().map(([n, p]) => `${n}:${p.shape.join('x')}`),
      [
        'weight_ih_l0:64x10',
        'weight_hh_l0:64x16',
        'bias_ih_l0:64',
        'bias_hh_l0:64',
        'weight_ih_l1:64x16',
        'weight_hh_l1:64x16',
        'bias_ih_l1:64',
        'bias_hh_l1:64',
      ],
    );
    m.dispose();
  });

  it('names parameters under the field that holds the LSTM, as PyTorch', () => {
    class Model extends Module {
      lstm = new LSTM(3, 4);
      head = new Linear(4, 2);
    }
    const model = new Model();
    assert.deepEqual(
      [...model.stateDict().keys()],
      ['lstm.weight_ih_l0', 'lstm.weight_hh_l0', 'lstm.bias_ih_l0', 'lstm.bias_hh_l0', 'head.weight', 'head.bias'],
    );
    model.dispose();
  });

  it('output and state shapes: batchFirst, bidirectional, unbatched', () => {
    const m = new LSTM(3, 4, { numLayers: 2, bidirectional: true, batchFirst: true });
    tidy(() => {
      const { output, h, c } = m.run(randn([5, 7, 3]));
      assert.deepEqual(output.shape, [5, 7, 8]);
      assert.deepEqual(h.shape, [4, 5, 4]);
      assert.deepEqual(c.shape, [4, 5, 4]);
      const single = m.run(randn([7, 3]));
      assert.deepEqual(single.output.shape, [7, 8]);
      assert.deepEqual(single.h.shape, [4, 4]);
    });
    const seqFirst = new LSTM(3, 4);
    tidy(() => assert.deepEqual(seqFirst.forward(randn([7, 5, 3])).shape, [7, 5, 4]));
    assert.throws(() => tidy(() => seqFirst.forward(randn([7, 5, 2]))), /LSTM\(3, 4\) expects input \[time, batch, 3\]/);
    assert.throws(() => tidy(() => seqFirst.run(randn([7, 5, 3]), { h: randn([1, 4, 4]), c: randn([1, 5, 4]) })), /initial state h must be \[1, 5, 4\]/);
    m.dispose();
    seqFirst.dispose();
  });

  it('the unbatched result equals the batched one for a batch of one', () => {
    const m = new LSTM(3, 4, { bidirectional: true }).eval();
    tidy(() => {
      const x = randn([6, 3]);
      const single = m.forward(x);
      const batched = m.forward(x.unsqueeze(1)).squeeze(1);
      assert.ok(maxAbsDiff(single, batched) < 1e-6);
    });
    m.dispose();
  });

  it('inter-layer dropout acts only in training mode', () => {
    manualSeed(3);
    const m = new LSTM(3, 8, { numLayers: 2, dropout: 0.5 });
    tidy(() => {
      const x = randn([5, 2, 3]);
      const a = m.forward(x);
      const b = m.forward(x);
      assert.ok(maxAbsDiff(a, b) > 1e-4, 'two training passes differ');
      m.eval();
      assert.equal(maxAbsDiff(m.forward(x), m.forward(x)), 0);
    });
    assert.throws(() => new LSTM(3, 4, { dropout: 1.5 }), /dropout must be in \[0, 1\]/);
    m.dispose();
  });

  it('still works after its tensors are replaced (to())', () => {
    const m = new LSTM(3, 4).eval();
    const x = randn([5, 2, 3]);
    const before = tidy(() => m.forward(x).toArray());
    m.to('cpu');
    tidy(() => assert.deepEqual(m.forward(x).toArray(), before));
    m.dispose();
    x.dispose();
  });

  it('repeated forward/backward inside tidy leaves the live tensor count unchanged', () => {
    const m = new LSTM(4, 6, { numLayers: 2, bidirectional: true, batchFirst: true, dropout: 0.1 });
    const x = randn([3, 5, 4]);
    const step = () =>
      tidy(() => {
        backward(m.forward(x).square().mean());
      });
    step();
    tidy(() => assert.ok(m.parameters().every((p) => p.grad !== null)));
    const live = memory().liveTensors;
    for (let i = 0; i < 5; i++) step();
    assert.equal(memory().liveTensors, live);
    m.dispose();
    x.dispose();
  });
});
