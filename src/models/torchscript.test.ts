// A TorchScript archive as a KwsModel: the same interface the built-in models give defenses and analysis
// (parameters, state dict, submodules by class, neuron layers, BatchNorm modes), on the PyTorch-made
// fixture of scripts/make-torchscript-fixture.py.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BatchNorm2d, Conv2d, isBatchNorm, Linear, recalibrateBatchNorm, sgd, withFrozenBatchNormStats } from '../nn/index.ts';
import { abs, backward, clone, conv1d, crossEntropy, log1p, memory, mul, noGrad, type Tensor, tensor, tidy } from '../torch/index.ts';
import { applyMask, classifierLayer, isConv, lastConvLayer, resolveNeuronLayer, withNeuronZeroed } from './neurons.ts';
import { batchNormMode, importTorchScript, loadTorchScriptModel, TorchScriptImportError, type TorchScriptModel } from './torchscript.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixtures = path.join(root, 'fixtures', 'torchscript');
const scripted = path.join(fixtures, 'kws-scripted.pt');
const traced = path.join(fixtures, 'kws-traced-eval.pt');
const expected = JSON.parse(readFileSync(path.join(fixtures, 'expected.json'), 'utf8')) as {
  logits: { data: string };
  labels: number[];
  lr: number;
  afterStep: { name: string; data: string }[];
};
const decode = (data: string): Float32Array => {
  const raw = Buffer.from(data, 'base64');
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
};

function fixedInput(samples = 1600): Tensor {
  const data = new Float32Array(4 * 1600);
  for (let i = 0; i < data.length; i++) data[i] = (((i * 7919) % 2001) - 1000) / 1024;
  return tidy(() => tensor(data, [4, 1600]).narrow(1, 0, samples).contiguous());
}

const logitsOf = (model: TorchScriptModel, x?: Tensor): Float32Array => tidy(() => noGrad(() => model.forward(x ?? fixedInput()).toFloat32Array()));
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const runningMean = (model: TorchScriptModel, bn = 'bn') => (model.stateDict().get(`${bn}.running_mean`) as Tensor).toFloat32Array();

describe('TorchScriptModel: a TorchScript archive as a model like the others', () => {
  it("loads in eval mode and gives PyTorch's logits", () => {
    const model = loadTorchScriptModel(scripted);
    assert.equal(model.training, false);
    assert.ok(maxDiff(logitsOf(model), decode(expected.logits.data)) < 1e-5);
    model.dispose();
  });

  it('shows its torch.nn layers as instances of the built-in layer classes, with their settings (scripted and traced)', () => {
    for (const file of [scripted, traced]) {
      const model = loadTorchScriptModel(file);
      const modules = new Map(model.namedModules());
      assert.deepEqual([...modules.keys()], ['', 'conv', 'bn', 'dw', 'bn_dw', 'pool', 'hidden', 'classifier']);
      const dw = modules.get('dw') as Conv2d;
      assert.ok(dw instanceof Conv2d && isConv(dw));
      assert.equal(dw.groups, 6);
      assert.equal(dw.bias, null);
      assert.deepEqual([dw.inChannels, dw.outChannels], [6, 6]);
      assert.deepEqual(dw.weight.shape, [6, 1, 3, 3]);
      const bn = modules.get('bn') as BatchNorm2d;
      assert.ok(bn instanceof BatchNorm2d && isBatchNorm(bn));
      assert.equal(bn.numFeatures, 6);
      assert.equal(bn.momentum, 0.1);
      assert.ok(modules.get('classifier') instanceof Linear);
      assert.equal((modules.get('hidden') as Linear).inFeatures, 48);
      // the view's tensors are the model's own
      assert.equal(dw.weight, model.stateDict().get('dw.weight'));
      assert.deepEqual(
        bn.namedParameters().map(([n]) => n),
        ['weight', 'bias'],
      );
      assert.deepEqual(
        bn.namedBuffers().map(([n]) => n),
        ['running_mean', 'running_var', 'num_batches_tracked'],
      );
      model.dispose();
    }
  });

  it('finds neuron layers and the classifier as the defenses do, and pruning reaches the archive', () => {
    const model = loadTorchScriptModel(scripted);
    const neurons = model.neuronLayers();
    assert.deepEqual(neurons, ['conv', 'dw', 'hidden']);
    assert.equal(classifierLayer(model, neurons), 'classifier');
    assert.equal(lastConvLayer(model, neurons), 'dw');
    const layer = resolveNeuronLayer(model, 'hidden');
    assert.equal(layer.kind, 'linear');
    assert.equal(layer.size, 16);
    const before = logitsOf(model);
    const convWeight = model.stateDict().get('conv.weight') as Tensor;
    let changed = 0;
    for (let channel = 0; channel < 6; channel++) {
      const zeroed = withNeuronZeroed(resolveNeuronLayer(model, 'conv'), channel, () => {
        assert.ok(convWeight.select(0, channel).abs().sum().item() === 0, 'the archive weight row is zero inside');
        return logitsOf(model);
      });
      if (maxDiff(zeroed, before) > 1e-6) changed += 1;
      assert.equal(maxDiff(logitsOf(model), before), 0, 'and is undone bit for bit');
    }
    assert.ok(changed > 0, 'zeroing a conv channel changes the logits');
    applyMask(model, { layer: 'hidden', kind: 'output-channels', size: 16, pruned: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15] });
    const pruned = logitsOf(model);
    const bias = (model.stateDict().get('classifier.bias') as Tensor).toFloat32Array();
    // every hidden unit pruned: the classifier sees zeros, the logits are its bias
    for (let i = 0; i < pruned.length; i++) assert.ok(Math.abs(pruned[i] - bias[i % 4]) < 1e-6);
    model.dispose();
  });

  it("one SGD step on model.parameters() equals PyTorch's, and the state dict follows PyTorch's order", () => {
    const model = loadTorchScriptModel(scripted).train();
    const opt = sgd(model.parameters(), { lr: expected.lr, momentum: 0 });
    tidy(() => backward(crossEntropy(model.forward(fixedInput()), tensor(expected.labels, undefined, { dtype: 'int64' }))));
    opt.step();
    const state = model.stateDict();
    assert.deepEqual(
      [...state.keys()].filter((k) => !k.endsWith('num_batches_tracked')),
      expected.afterStep.map((e) => e.name),
    );
    for (const want of expected.afterStep) assert.ok(maxDiff((state.get(want.name) as Tensor).toFloat32Array(), decode(want.data)) < 1e-5, want.name);
    model.dispose();
  });

  it('loadStateDict copies into the archive (a state dict from another load of it)', () => {
    const a = loadTorchScriptModel(scripted);
    const b = loadTorchScriptModel(scripted);
    noGrad(() => tidy(() => (a.stateDict().get('classifier.bias') as Tensor).copyFrom(new Float32Array([1, -1, 0.5, 2]))));
    assert.ok(maxDiff(logitsOf(a), logitsOf(b)) > 0.1);
    b.loadStateDict(a.stateDict());
    assert.equal(maxDiff(logitsOf(a), logitsOf(b)), 0);
    a.dispose();
    b.dispose();
  });

  it('assigning a view tensor field puts it in the archive, putting the original back restores it', () => {
    const model = loadTorchScriptModel(scripted);
    const bn = model.namedModules().find(([n]) => n === 'bn')?.[1] as BatchNorm2d;
    const before = logitsOf(model);
    const original = bn.weight;
    const scaled = noGrad(() => tidy(() => mul(clone(original), 0)));
    bn.weight = scaled;
    assert.ok(maxDiff(logitsOf(model), before) > 1e-4);
    bn.weight = original;
    assert.equal(maxDiff(logitsOf(model), before), 0);
    scaled.dispose();
    model.dispose();
  });

  it('calling a view runs that submodule of the archive alone', () => {
    const model = loadTorchScriptModel(scripted);
    const conv = model.namedModules().find(([n]) => n === 'dw')?.[1] as Conv2d;
    const y = tidy(() => noGrad(() => conv.forward(tensor(new Float32Array(6 * 4 * 5).fill(1), [1, 6, 4, 5])).shape));
    assert.deepEqual(y, [1, 6, 4, 5]);
    model.dispose();
  });

  it('train/eval reach the archive; freezeStats and a set momentum work as on a built-in BatchNorm', () => {
    const model = loadTorchScriptModel(scripted);
    const start = runningMean(model);
    model.train();
    assert.equal(model.training, true);
    assert.ok(model.modules().every((m) => m.training));
    withFrozenBatchNormStats(model, () => logitsOf(model));
    assert.equal(maxDiff(runningMean(model), start), 0, 'frozen statistics stay');
    logitsOf(model);
    assert.ok(maxDiff(runningMean(model), start) > 0, 'train mode moves them');
    // Recalibration (momentum 1/k per batch) makes the running statistics the average of the batches': over
    // [x, x], the statistics of x at the first BatchNorm, computed here from the archive's front-end buffer
    // and its conv submodule run alone.
    const x = fixedInput();
    const seen = recalibrateBatchNorm(model, (b) => model.forward(b), [x, x]);
    assert.equal(seen, 2);
    const [wantMean, wantVar] = tidy(() =>
      noGrad(() => {
        const bank = model.stateDict().get('filterbank') as Tensor;
        const spec = log1p(abs(conv1d(x.unsqueeze(1), bank, null, { stride: 32 }))).unsqueeze(1);
        const conv = model.namedModules().find(([n]) => n === 'conv')?.[1] as Conv2d;
        const h = conv.forward(spec).transpose(0, 1).flatten(1);
        const mean = h.mean(1);
        const n = h.shape[1];
        return [
          mean.toFloat32Array(),
          h
            .sub(mean.unsqueeze(1))
            .square()
            .sum(1)
            .div(n - 1)
            .toFloat32Array(),
        ];
      }),
    );
    assert.ok(maxDiff(runningMean(model), wantMean) < 1e-5, `running mean: ${maxDiff(runningMean(model), wantMean)}`);
    const runningVar = (model.stateDict().get('bn.running_var') as Tensor).toFloat32Array();
    assert.ok(maxDiff(runningVar, wantVar) < 1e-5, `running var: ${maxDiff(runningVar, wantVar)}`);
    const bn = model.namedModules().find(([n]) => n === 'bn')?.[1] as BatchNorm2d;
    assert.equal(bn.momentum, 0.1, 'the momentum is back to the archive’s');
    x.dispose();
    model.dispose();
  });

  it('says whether BatchNorm follows train/eval (scripted) or is frozen (traced in eval mode)', () => {
    for (const [file, mode] of [
      [scripted, 'follows-mode'],
      [traced, 'frozen-eval'],
    ] as const) {
      const model = loadTorchScriptModel(file);
      const before = runningMean(model);
      const probe = fixedInput(800);
      const found = batchNormMode(model, probe);
      assert.equal(found.mode, mode, file);
      assert.deepEqual(Object.keys(found.layers), ['bn', 'bn_dw']);
      assert.equal(maxDiff(runningMean(model), before), 0, 'the probe leaves the statistics as they were');
      assert.equal(model.training, false, 'and the mode');
      probe.dispose();
      model.dispose();
    }
  });

  it('importTorchScript probes the archive and refuses a class count or input it does not fit', () => {
    const { model, report } = importTorchScript(traced, { inputShape: [1600], classes: 4 });
    assert.equal(report.batchNorm, 'frozen-eval');
    assert.deepEqual(report.neuronLayers, ['conv', 'dw', 'hidden']);
    assert.equal(report.classifier, 'classifier');
    assert.deepEqual(report.batchNorms, ['bn', 'bn_dw']);
    assert.match(report.sha256, /^[0-9a-f]{64}$/);
    model.dispose();
    assert.throws(
      () => importTorchScript(scripted, { inputShape: [1600], classes: 10 }),
      (e: Error) => e instanceof TorchScriptImportError && /\[2, 4\].*10 classes/.test(e.message),
    );
    assert.throws(
      () => importTorchScript(scripted, { inputShape: [1, 40, 101], classes: 4 }),
      (e: Error) => e instanceof TorchScriptImportError && /cannot take a batch of inputs of shape \[batch, 1, 40, 101\]/.test(e.message),
    );
  });

  it('live tensors stay flat over training steps with frozen BatchNorm statistics', () => {
    const model = loadTorchScriptModel(scripted).train();
    const opt = sgd(model.parameters(), { lr: 1e-3, momentum: 0.9 });
    const x = fixedInput(160);
    const labels = tensor([0, 1, 2, 3], undefined, { dtype: 'int64' });
    const step = () => {
      withFrozenBatchNormStats(model, () => tidy(() => backward(crossEntropy(model.forward(x), labels))));
      opt.step();
      opt.zeroGrad();
    };
    for (let i = 0; i < 3; i++) step();
    const start = memory().liveTensors;
    for (let i = 0; i < 200; i++) step();
    assert.equal(memory().liveTensors, start);
    opt.dispose();
    x.dispose();
    labels.dispose();
    model.dispose();
  });
});
