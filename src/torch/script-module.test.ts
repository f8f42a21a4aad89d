// The engine's TorchScript loader against PyTorch: fixtures/torchscript/ (scripts/make-torchscript-fixture.py)
// holds a small keyword spotter scripted and traced by PyTorch, its logits on a fixed input, and its weights
// after one SGD step computed by PyTorch.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sgd } from '../nn/optim/index.ts';
import { backward, crossEntropy, loadScriptModule, memory, noGrad, type Tensor, TorchScriptLoadError, tensor, tidy } from './index.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixtures = path.join(root, 'fixtures', 'torchscript');
const scripted = path.join(fixtures, 'kws-scripted.pt');
const traced = path.join(fixtures, 'kws-traced-eval.pt');

interface Encoded {
  shape: number[];
  data: string;
}
const expected = JSON.parse(readFileSync(path.join(fixtures, 'expected.json'), 'utf8')) as {
  inputShape: number[];
  labels: number[];
  lr: number;
  logits: Encoded;
  tracedLogits: Encoded;
  afterStep: (Encoded & { name: string })[];
};
const decode = (e: Encoded): Float32Array => {
  const raw = Buffer.from(e.data, 'base64');
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
};

/** The fixture's input, exact in float32: x[b, n] = (((b * 1600 + n) * 7919) % 2001 - 1000) / 1024. */
function fixedInput(): Tensor {
  const [b, n] = expected.inputShape;
  const data = new Float32Array(b * n);
  for (let i = 0; i < data.length; i++) data[i] = (((i * 7919) % 2001) - 1000) / 1024;
  return tensor(data, [b, n]);
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const dir = mkdtempSync(path.join(tmpdir(), 'kwshield-torchscript-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('TorchScript archives through torch::jit::load', () => {
  it("gives PyTorch's logits within 1e-5 (scripted and traced)", () => {
    for (const [file, want] of [
      [scripted, expected.logits],
      [traced, expected.tracedLogits],
    ] as const) {
      const m = loadScriptModule(file).eval();
      const got = tidy(() => noGrad(() => m.forwardTensor(fixedInput()).toFloat32Array()));
      assert.ok(maxDiff(got, decode(want)) < 1e-5, `${path.basename(file)}: ${maxDiff(got, decode(want))}`);
      m.dispose();
    }
  });

  it('lists parameters and buffers by dotted name, aliasing the module (a change to one changes the forward)', () => {
    const m = loadScriptModule(scripted).eval();
    const names = m.namedParameters().map(([n]) => n);
    assert.deepEqual(names, [
      'conv.weight',
      'conv.bias',
      'bn.weight',
      'bn.bias',
      'dw.weight',
      'bn_dw.weight',
      'bn_dw.bias',
      'hidden.weight',
      'hidden.bias',
      'classifier.weight',
      'classifier.bias',
    ]);
    assert.deepEqual(
      m.namedBuffers().map(([n]) => n),
      ['filterbank', 'bn.running_mean', 'bn.running_var', 'bn.num_batches_tracked', 'bn_dw.running_mean', 'bn_dw.running_var', 'bn_dw.num_batches_tracked'],
    );
    // the same Tensor objects every time, persistent, requiring grad as saved
    assert.equal(m.namedParameters()[0][1], m.namedParameters()[0][1]);
    assert.ok(m.namedParameters().every(([, t]) => t.persistent && t.requiresGrad));
    const bias = m.parameter('classifier.bias') as Tensor;
    const before = tidy(() => noGrad(() => m.forwardTensor(fixedInput()).toFloat32Array()));
    noGrad(() => tidy(() => bias.copyFrom(new Float32Array([1, 2, 3, 4]).map((v, i) => v + bias.toFloat32Array()[i]))));
    const afterChange = tidy(() => noGrad(() => m.forwardTensor(fixedInput()).toFloat32Array()));
    for (let i = 0; i < before.length; i++) assert.ok(Math.abs(afterChange[i] - before[i] - ((i % 4) + 1)) < 1e-5);
    // getAttr aliases the slot too
    const slot = m.getAttr('classifier', 'bias') as Tensor;
    assert.ok(slot.handle.sameStorage(bias.handle));
    slot.dispose();
    m.dispose();
  });

  it('describes submodules: class names without mangling, channel counts, groups, BatchNorm settings', () => {
    const s = loadScriptModule(scripted);
    const t = loadScriptModule(traced);
    for (const m of [s, t]) {
      const byPath = new Map(m.submodules().map((r) => [r.path, r]));
      assert.equal(byPath.get('dw')?.type, '__torch__.torch.nn.modules.conv.Conv2d');
      assert.deepEqual(byPath.get('dw')?.parameters, ['weight'], 'a None bias is no parameter');
      assert.equal(byPath.get('bn')?.type, '__torch__.torch.nn.modules.batchnorm.BatchNorm2d');
      assert.deepEqual(byPath.get('bn')?.buffers, ['running_mean', 'running_var', 'num_batches_tracked']);
      const dwGroups = byPath.get('dw')?.attributes.groups ?? byPath.get('dw')?.ops.find((o) => 'groups' in o.args)?.args.groups;
      assert.equal(dwGroups, 6);
    }
    const sbn = s.submodules().find((r) => r.path === 'bn');
    assert.equal(sbn?.attributes.eps, 1e-5);
    assert.equal(sbn?.attributes.momentum, 0.1);
    assert.equal(sbn?.readsTraining, true, 'a scripted BatchNorm reads self.training');
    const tbn = t.submodules().find((r) => r.path === 'bn');
    assert.equal(tbn?.readsTraining, false, 'a traced one does not');
    assert.equal(tbn?.ops.find((o) => o.op === 'aten::batch_norm')?.args.training, false, 'traced in eval mode: training=False is a constant');
    s.dispose();
    t.dispose();
  });

  it("one SGD step through kwshield's optimizer equals PyTorch's", () => {
    const m = loadScriptModule(scripted).train();
    const params = m.namedParameters().map(([, t]) => t);
    const opt = sgd(params, { lr: expected.lr, momentum: 0 });
    tidy(() => {
      const labels = tensor(expected.labels, undefined, { dtype: 'int64' });
      backward(crossEntropy(m.forwardTensor(fixedInput()), labels));
    });
    assert.ok(
      params.every((p) => p.grad !== null),
      'backward through the archive filled every parameter gradient',
    );
    opt.step();
    const state = new Map([...m.namedParameters(), ...m.namedBuffers()]);
    for (const want of expected.afterStep) {
      const got = (state.get(want.name) as Tensor).toFloat32Array();
      const d = maxDiff(got, decode(want));
      assert.ok(d < 1e-5, `${want.name}: max difference ${d}`);
    }
    m.dispose();
  });

  it('save -> load gives the same logits, with the updated weights', () => {
    const m = loadScriptModule(scripted).eval();
    noGrad(() => tidy(() => (m.parameter('hidden.bias') as Tensor).copyFrom(new Float32Array(16).fill(0.25))));
    const want = tidy(() => noGrad(() => m.forwardTensor(fixedInput()).toFloat32Array()));
    assert.ok(maxDiff(want, decode(expected.logits)) > 1e-3, 'the change shows in the logits');
    const file = path.join(dir, 'saved.pt');
    m.save(file);
    m.dispose();
    const back = loadScriptModule(file).eval();
    const got = tidy(() => noGrad(() => back.forwardTensor(fixedInput()).toFloat32Array()));
    assert.equal(maxDiff(got, want), 0);
    back.dispose();
  });

  it('refuses what is not a TorchScript archive, saying what it is and how to export one', () => {
    const wav = path.join(dir, 'clip.wav');
    const header = Buffer.alloc(44);
    header.write('RIFF', 0);
    header.write('WAVEfmt ', 8);
    writeFileSync(wav, Buffer.concat([header, Buffer.alloc(3200)]));
    const random = path.join(dir, 'random.pt');
    writeFileSync(random, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) % 251)));
    const truncated = path.join(dir, 'truncated.pt');
    writeFileSync(truncated, readFileSync(scripted).subarray(0, 9000));
    const emptyFile = path.join(dir, 'empty.pt');
    writeFileSync(emptyFile, '');
    for (const file of [wav, random, truncated]) {
      assert.throws(
        () => loadScriptModule(file),
        (e: Error) =>
          e instanceof TorchScriptLoadError &&
          e.message.startsWith(file) &&
          /not a TorchScript archive/.test(e.message) &&
          /torch\.jit\.script\(model\)\.save/.test(e.message),
      );
    }
    assert.throws(() => loadScriptModule(emptyFile), /empty\.pt is empty: it is not a TorchScript archive/);
    assert.throws(() => loadScriptModule(path.join(dir, 'missing.pt')), /missing\.pt not found/);
    assert.throws(() => loadScriptModule(dir), /is a folder/);
  });

  it('refuses a torch.save() checkpoint (a PyTorch zip without code) with its own reason', () => {
    const checkpoint = path.join(fixtures, 'kws-state-dict.pt');
    assert.throws(
      () => loadScriptModule(checkpoint),
      (e: Error) =>
        e instanceof TorchScriptLoadError && /without TorchScript code \(a torch\.save\(\) checkpoint/.test(e.message) && /torch\.jit\.script/.test(e.message),
    );
  });

  it('a forward on an input it cannot take names the archive and keeps the process alive', () => {
    const m = loadScriptModule(scripted);
    assert.throws(() => tidy(() => m.forwardTensor(tensor(new Float32Array(10), [10]))), /kws-scripted\.pt: forward/);
    m.dispose();
    assert.throws(() => m.forward(), /was disposed/);
  });

  it('live tensors stay flat over 1,000 forward/backward steps', () => {
    const m = loadScriptModule(scripted).train();
    const params = m.namedParameters().map(([, t]) => t);
    const opt = sgd(params, { lr: 1e-3, momentum: 0.9 });
    const x = tidy(() => fixedInput().narrow(1, 0, 160));
    const labels = tensor([0, 1, 2, 3], undefined, { dtype: 'int64' });
    const step = () => {
      tidy(() => backward(crossEntropy(m.forwardTensor(x), labels)));
      opt.step();
      opt.zeroGrad();
    };
    for (let i = 0; i < 5; i++) step();
    const start = memory().liveTensors;
    for (let i = 0; i < 1000; i++) step();
    assert.equal(memory().liveTensors, start);
    opt.dispose();
    x.dispose();
    labels.dispose();
    m.dispose();
  });

  it('train/eval switches a scripted BatchNorm; a traced-in-eval one stays frozen', () => {
    for (const [file, follows] of [
      [scripted, true],
      [traced, false],
    ] as const) {
      const m = loadScriptModule(file);
      const mean = m.buffer('bn.running_mean') as Tensor;
      const before = mean.toFloat32Array();
      const evalOut = tidy(() => noGrad(() => m.eval().forwardTensor(fixedInput()).toFloat32Array()));
      const trainOut = tidy(() => noGrad(() => m.train().forwardTensor(fixedInput()).toFloat32Array()));
      const moved = maxDiff(mean.toFloat32Array(), before) > 0;
      assert.equal(moved, follows, `${path.basename(file)}: running mean moved in train mode`);
      assert.equal(maxDiff(evalOut, trainOut) > 1e-4, follows, `${path.basename(file)}: train-mode logits differ from eval-mode`);
      m.dispose();
    }
  });
});
