import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { crossEntropy, dispose, keep, loadSafetensors, memory, noGrad, ones, randn, saveSafetensors, tensor, tidy } from '../torch/index.ts';
import { adam, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, LayerNorm, Linear, Module, Sequential, withFrozenBatchNormStats } from './index.ts';
import { trainStep } from './train-step.ts';

class Tiny extends Module {
  conv = new Conv2d(1, 4, 3, { padding: 1 });
  bn = new BatchNorm2d(4);
  head = new Sequential(new Linear(4, 8), new Dropout(0.5), new Linear(8, 2, { bias: false }));
  forward(x: ReturnType<typeof randn>) {
    const y = this.bn.forward(this.conv.forward(x)).relu().mean([2, 3]);
    return this.head.forward(y);
  }
}

describe('Module', () => {
  it('names parameters and buffers as PyTorch does', () => {
    const m = new Tiny();
    assert.deepEqual(
      [...m.stateDict().keys()],
      [
        'conv.weight',
        'conv.bias',
        'bn.weight',
        'bn.bias',
        'bn.running_mean',
        'bn.running_var',
        'bn.num_batches_tracked',
        'head.0.weight',
        'head.0.bias',
        'head.2.weight',
      ],
    );
    assert.equal(m.parameters().length, 7);
    assert.deepEqual(
      m.namedBuffers().map(([n]) => n),
      ['bn.running_mean', 'bn.running_var', 'bn.num_batches_tracked'],
    );
    assert.deepEqual(m.stateDict().get('conv.weight')?.shape, [4, 1, 3, 3]);
    assert.equal(m.parameterCount(), 4 * 9 + 4 + 4 + 4 + 4 * 8 + 8 + 16);
    m.dispose();
  });

  it('PyTorch default init bounds: uniform within 1/sqrt(fan_in)', () => {
    const l = new Linear(100, 50);
    const w = l.weight.toArray();
    const bound = 1 / Math.sqrt(100);
    assert.ok(w.every((v) => Math.abs(v) <= bound));
    assert.ok(Math.max(...w) > bound * 0.9, 'spread over the whole interval');
    l.dispose();
  });

  it('state dict round trip gives identical outputs; wrong shapes are named', () => {
    const a = new Tiny().eval();
    const b = new Tiny().eval();
    const x = randn([2, 1, 5, 5]);
    b.loadStateDict(a.stateDict());
    tidy(() => assert.deepEqual(a.forward(x).toArray(), b.forward(x).toArray()));
    const wrong = new Map(a.stateDict());
    wrong.set('head.0.weight', ones([3, 3]));
    assert.throws(() => b.loadStateDict(wrong), /head\.0\.weight: expected \[8, 4\], got \[3, 3\]/);
    const missing = new Map(a.stateDict());
    missing.delete('bn.bias');
    assert.throws(() => b.loadStateDict(missing), /missing: bn\.bias/);
    a.dispose();
    b.dispose();
    x.dispose();
  });

  it('state dict round trip through a safetensors file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kws-sd-'));
    const a = new Tiny().eval();
    const b = new Tiny().eval();
    const x = randn([2, 1, 5, 5]);
    tidy(() => saveSafetensors(path.join(dir, 'm.safetensors'), a.stateDict()));
    tidy(() => b.loadStateDict(loadSafetensors(path.join(dir, 'm.safetensors')).tensors));
    tidy(() => assert.deepEqual(a.forward(x).toArray(), b.forward(x).toArray()));
    assert.equal(b.bn.num_batches_tracked.dtype, 'int64');
    for (const t of [a, b]) t.dispose();
    x.dispose();
    rmSync(dir, { recursive: true });
  });

  it('train/eval reaches every descendant; dropout only in training', () => {
    const m = new Tiny();
    m.eval();
    assert.ok(m.modules().every((c) => !c.training));
    const d = new Dropout(0.5);
    d.eval();
    tidy(() => assert.deepEqual(d.forward(ones([100])).toArray(), new Array(100).fill(1)));
    d.train();
    tidy(() =>
      assert.ok(
        d
          .forward(ones([100]))
          .toArray()
          .some((v) => v === 0),
      ),
    );
    m.dispose();
  });

  it('BatchNorm updates running stats in training unless frozen', () => {
    const bn = new BatchNorm1d(3);
    const x = randn([16, 3]).add(5);
    tidy(() => bn.forward(x));
    const after1 = bn.running_mean.toArray();
    assert.ok(
      after1.every((v) => v > 0.3),
      'moved towards the batch mean of ~5 by momentum 0.1',
    );
    assert.equal(bn.num_batches_tracked.item(), 1);
    withFrozenBatchNormStats(bn, () => tidy(() => bn.forward(x)));
    assert.deepEqual(bn.running_mean.toArray(), after1);
    assert.equal(bn.num_batches_tracked.item(), 1);
    bn.dispose();
    x.dispose();
  });

  it('channelsLast keeps names and values', () => {
    const m = new Tiny().eval();
    const x = randn([2, 1, 5, 5]);
    const before = tidy(() => m.forward(x).toArray());
    m.channelsLast();
    assert.ok(m.conv.weight.isChannelsLast);
    assert.equal(m.conv.weight.requiresGrad, true);
    const after = tidy(() => m.forward(x.contiguous('channelsLast')).toArray());
    before.forEach((v, i) => assert.ok(Math.abs(v - after[i]) < 1e-5));
    m.dispose();
    x.dispose();
  });

  it('1,000 channels_last training steps (conv, BN, Adam) keep the live tensor count constant', () => {
    const net = new Sequential(new Conv2d(1, 4, 3, { padding: 1 }), new BatchNorm2d(4)).channelsLast().train();
    const head = new Linear(4 * 8 * 8, 3);
    const optimizer = adam([...net.parameters(), ...head.parameters()], { lr: 1e-3 });
    const x = keep(randn([2, 1, 8, 8]).contiguous('channelsLast'));
    const y = keep(tensor([0, 2], undefined, { dtype: 'int64' }));
    const step = () => trainStep(optimizer, () => crossEntropy(head.forward(net.forward(x).flatten(1)), y));
    step();
    const before = memory();
    for (let i = 0; i < 1000; i++) step();
    const after = memory();
    assert.equal(after.liveTensors, before.liveTensors);
    assert.equal(after.liveBytes, before.liveBytes);
    optimizer.dispose();
    net.dispose();
    head.dispose();
    dispose(x, y);
  });

  it('channelsLast and dispose leave no tensor behind', () => {
    const before = memory().liveTensors;
    const m = new Tiny().channelsLast();
    m.dispose();
    assert.equal(memory().liveTensors, before);
  });

  it('shape errors name the layer and the expected shape', () => {
    const l = new Linear(4, 2);
    assert.throws(() => tidy(() => l.forward(ones([3, 5]))), /Linear\(4 -> 2\).*\[3, 5\].*must be 4/);
    const c = new Conv2d(3, 2, 3);
    assert.throws(() => tidy(() => c.forward(ones([1, 1, 8, 8]))), /Conv2d expects input \[batch, 3/);
    const ln = new LayerNorm(4);
    assert.throws(() => tidy(() => ln.forward(ones([2, 5]))), /layer_norm/);
    for (const m of [l, c, ln]) m.dispose();
  });

  it('forward/backward in tidy leaves the live tensor count unchanged', () => {
    const m = new Tiny();
    const x = randn([4, 1, 5, 5]);
    const before = memory().liveTensors;
    for (let i = 0; i < 20; i++) {
      tidy(() => {
        const loss = m.forward(x).sum();
        noGrad(() => loss.mul(1));
        m.zeroGrad();
      });
    }
    assert.equal(memory().liveTensors, before);
    m.dispose();
    x.dispose();
  });
});
