// Every registered model: shapes, gradients, state-dict round trips, neuron layers, sizes and memory.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adamW, Conv1d, Conv2d, fitFeatureNorms, Linear } from '../nn/index.ts';
import { trainStep } from '../nn/train-step.ts';
import {
  all,
  backward,
  crossEntropy,
  isfinite,
  keep,
  manualSeed,
  memory,
  noGrad,
  profileOps,
  randint,
  randn,
  type Tensor,
  tensor,
  tidy,
  zeroInPlace,
  zeros,
} from '../torch/index.ts';
import { buildModel, getModelSpec, type KwsModel, type LstmNet, lstmUnitParameters, modelNames, smallCnnFlatSize } from './index.ts';

const batch = 2;
const classes = 5;

const build = (name: string) => buildModel(name, { classes });
const randomInput = (name: string): Tensor => randn([batch, ...getModelSpec(name).inputShape]);
const labels = (): Tensor => randint(0, classes, [batch]);

function logits(model: KwsModel, x: Tensor): Float32Array {
  return noGrad(() => tidy(() => model.forward(x).toFloat32Array()));
}

describe('model zoo', () => {
  it('registers the five families and their variants', () => {
    for (const name of ['resnet', 'lstm', 'lstm-large', 'smallcnn', 'kwt', 'kwt-2', 'kwt-3', 'eat', 'eat-m']) {
      assert.ok(modelNames().includes(name), `${name} is not registered`);
    }
    assert.equal(getModelSpec('kwt').frontEnd, 'mfcc-kwt');
    assert.equal(getModelSpec('eat').frontEnd, 'waveform-16k');
    assert.deepEqual(getModelSpec('smallcnn').inputShape, [101, 40]);
  });

  for (const name of modelNames()) {
    it(`${name}: forward gives [batch, classes] and backward reaches every parameter with finite gradients`, () => {
      manualSeed(1);
      const model = build(name).train();
      tidy(() => {
        const y = model.forward(randomInput(name));
        assert.deepEqual(y.shape, [batch, classes]);
        backward(crossEntropy(y, labels()));
        for (const [param, p] of model.namedParameters()) {
          const g = p.grad;
          assert.ok(g, `${param} has no gradient`);
          assert.ok(all(isfinite(g)).item(), `${param} has a non-finite gradient`);
        }
      });
      model.dispose();
    });
  }

  for (const name of modelNames()) {
    it(`${name}: a state dict loaded into a second instance gives identical eval logits`, () => {
      manualSeed(2);
      const first = build(name);
      const second = build(name);
      const x = keep(randomInput(name));
      // One training-mode pass so BatchNorm running statistics differ from their initial values.
      noGrad(() => tidy(() => void first.forward(x)));
      first.eval();
      second.eval();
      const before = logits(second, x);
      second.loadStateDict(first.stateDict());
      const expected = logits(first, x);
      assert.notDeepEqual(before, expected, 'two fresh instances should differ before loading');
      assert.deepEqual(logits(second, x), expected);
      x.dispose();
      first.dispose();
      second.dispose();
    });
  }

  for (const name of modelNames()) {
    it(`${name}: neuron layers are Conv/Linear layers of the state dict, the classifier excluded`, () => {
      const model = build(name);
      const state = model.stateDict();
      const layers = getModelSpec(name).neuronLayers(model);
      assert.ok(layers.length > 0);
      assert.equal(new Set(layers).size, layers.length, 'duplicate neuron layers');
      const modules = new Map(model.namedModules());
      for (const layer of layers) {
        if (name.startsWith('lstm')) {
          const hidden = model.stateDict().get('lstm.weight_hh_l0')?.size(1) as number;
          const { names, rows } = lstmUnitParameters(layer, hidden, hidden - 1);
          for (const p of names) assert.ok(state.has(p), `${layer}: ${p} is not in the state dict`);
          assert.equal(Math.max(...rows), (state.get(names[0]) as Tensor).size(0) - 1);
          continue;
        }
        assert.ok(state.has(`${layer}.weight`), `${layer}.weight is not in the state dict`);
        const m = modules.get(layer);
        assert.ok(m instanceof Conv1d || m instanceof Conv2d || m instanceof Linear, `${layer} is not a Conv or Linear layer`);
        assert.notEqual(m.weight.size(0), classes, `${layer} looks like the classifier`);
      }
      model.dispose();
    });
  }

  it('parameter counts match the papers', () => {
    const count = (name: string, c = 12) => {
      const model = buildModel(name, { classes: c });
      const n = model.parameterCount();
      model.dispose();
      return n;
    };
    const near = (name: string, expected: number, tolerance = 0.15) => {
      const n = count(name);
      assert.ok(Math.abs(n - expected) / expected <= tolerance, `${name}: ${n} parameters, expected ~${expected}`);
    };
    // KWT paper Table 1 (Berg et al. 2021).
    near('kwt', 0.607e6);
    near('kwt-2', 2.394e6);
    near('kwt-3', 5.361e6);
    // Exact: conv 64/64/32 2x2 + BN, FC 3072->128->12.
    assert.equal(count('smallcnn'), 420_204);
    // nn.LSTM(40, 128, 2) + Linear(128, 12); [GNFT] RNN: nn.LSTM(40, 768, 3) + Linear(768, 12).
    assert.equal(count('lstm'), 87_040 + 132_096 + 1_548);
    assert.equal(count('lstm-large'), 2_488_320 + 2 * 4_724_736 + 9_228);
  });

  it('smallcnn: the flatten size follows the input shape', () => {
    assert.equal(smallCnnFlatSize([1, 101, 40]), 3072);
    assert.equal(smallCnnFlatSize([1, 32, 40]), 896);
    assert.equal(smallCnnFlatSize([1, 32, 13]), 224);
  });

  it('resnet and smallcnn in channels_last train without converting an activation between layouts', () => {
    // A one-input-channel stem weight is "contiguous" in both layouts; given NCHW strides it made oneDNN
    // run the stem in NCHW and convert its output back before every later conv (2026-12-02, issue 13).
    for (const name of ['resnet', 'smallcnn']) {
      const model = buildModel(name, { classes }, 'channelsLast').train();
      const optimizer = adamW(model.parameters());
      const { ops } = tidy(() => profileOps(() => trainStep(optimizer, () => crossEntropy(model.forward(randomInput(name)), labels())), { withShapes: true }));
      // a conv (forward or backward) handed an activation (leading dim: the batch of 2) in the other layout
      const conversions = ops.filter((o) => /^aten::contiguous \[2, \d+, \d+, \d+\].* <- aten::(_convolution|convolution_backward)$/.test(o.name));
      assert.deepEqual(
        conversions.map((o) => o.name),
        [],
        `${name}: activations converted between layouts`,
      );
      optimizer.dispose();
      model.dispose();
    }
  });

  it('smallcnn: channels_last and contiguous weights give the same logits', () => {
    manualSeed(7);
    const packed = buildModel('smallcnn', { classes }, 'channelsLast').eval();
    const plain = buildModel('smallcnn', { classes }, 'contiguous').eval();
    plain.loadStateDict(packed.stateDict());
    const x = keep(randn([batch, 101, 40]));
    const [a, b] = [logits(packed, x), logits(plain, x)];
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-5, `logit ${i}: ${a[i]} vs ${b[i]}`);
    x.dispose();
    packed.dispose();
    plain.dispose();
  });

  it('lstm: zeroing the rows lstmUnitParameters names silences that hidden unit', () => {
    manualSeed(4);
    const model = build('lstm') as LstmNet;
    const [unit, hidden] = [5, model.config.hiddenSize];
    const { names, rows } = lstmUnitParameters('lstm.l1', hidden, unit);
    const state = model.stateDict();
    noGrad(() => {
      for (const p of names) for (const row of rows) zeroInPlace((state.get(p) as Tensor).select(0, row));
    });
    tidy(() => {
      const output = model.lstm.forward(randn([batch, 101, 40]));
      assert.equal(output.select(2, unit).abs().max().item(), 0);
      assert.ok(
        output
          .select(2, unit + 1)
          .abs()
          .max()
          .item() > 0,
      );
    });
    model.dispose();
  });

  it('lstm: forgetGateBias sets only the forget gate rows of every layer', () => {
    manualSeed(6);
    const model = buildModel('lstm', { classes, forgetGateBias: 1.5 }) as LstmNet;
    const hidden = model.config.hiddenSize;
    const state = model.stateDict();
    for (let layer = 0; layer < model.config.numLayers; layer++) {
      const ih = (state.get(`lstm.bias_ih_l${layer}`) as Tensor).toArray() as number[];
      const hh = (state.get(`lstm.bias_hh_l${layer}`) as Tensor).toArray() as number[];
      const forget = (b: number[]) => b.slice(hidden, 2 * hidden);
      assert.ok(forget(ih).every((v) => v === 1.5) && forget(hh).every((v) => v === 0), `layer ${layer} forget rows`);
      // The other gates keep PyTorch's uniform init in +-1/sqrt(hidden).
      const others = [...ih.slice(0, hidden), ...ih.slice(2 * hidden)];
      assert.ok(others.every((v) => Math.abs(v) <= 1 / Math.sqrt(hidden)) && new Set(others).size > hidden, `layer ${layer} other gates`);
    }
    model.dispose();
  });

  it('lstm: with inputNorm, a per-coefficient affine change of the data changes nothing once refitted', () => {
    manualSeed(7);
    const model = buildModel('lstm', { classes, inputNorm: true }).eval();
    const other = buildModel('lstm', { classes, inputNorm: true }).eval();
    tidy(() => {
      other.loadStateDict(model.stateDict());
      const x = randn([4, 101, 40]);
      // MFCC-like: coefficient 0 hundreds of dB, the rest a few units.
      const scale = tensor(Array.from({ length: 40 }, (_, i) => (i === 0 ? 300 : 1 + i / 10)));
      const shifted = x.mul(scale).add(50);
      fitFeatureNorms(model, x);
      fitFeatureNorms(other, shifted);
      const a = logits(model, x);
      const b = logits(other, shifted);
      assert.ok(
        a.every((v, i) => Math.abs(v - b[i]) < 1e-4),
        'logits differ after refitting the input norm',
      );
    });
    model.dispose();
    other.dispose();
  });

  it('kwt: takes frames x coefficients (mfcc-kwt) and KWT’s own coefficients x frames alike', () => {
    manualSeed(5);
    const model = build('kwt').eval();
    const x = keep(randn([batch, 98, 40]));
    const xt = keep(x.transpose(1, 2).contiguous());
    // Equal up to rounding: the two layouts reach different BLAS paths.
    const [a, b] = [logits(model, xt), logits(model, x)];
    assert.ok(
      a.every((v, i) => Math.abs(v - b[i]) < 1e-5),
      `${a} vs ${b}`,
    );
    assert.throws(() => tidy(() => model.forward(randn([batch, 101, 40]))), /KWT expects MFCC \[batch, 98, 40\]/);
    x.dispose();
    xt.dispose();
    model.dispose();
  });

  it('eat: peak-normalises each clip inside the model, so gain does not matter and silence stays finite', () => {
    manualSeed(6);
    const model = build('eat').eval();
    const x = keep(randn([batch, 16384]));
    const louder = keep(x.mul(7));
    const silent = keep(zeros([1, 16384]));
    const [a, b] = [logits(model, x), logits(model, louder)];
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-4, `logit ${i}: ${a[i]} vs ${b[i]}`);
    assert.ok(logits(model, silent).every(Number.isFinite));
    for (const t of [x, louder, silent]) t.dispose();
    model.dispose();
  });

  for (const name of ['smallcnn', 'lstm', 'kwt', 'eat']) {
    it(`${name}: repeated training steps inside tidy keep the live tensor count constant`, () => {
      manualSeed(3);
      const model = build(name).train();
      const optimizer = adamW(model.parameters(), { lr: 1e-3 });
      const x = keep(randomInput(name));
      const y = keep(labels());
      const step = () => trainStep(optimizer, () => crossEntropy(model.forward(x), y));
      step(); // creates gradients and optimizer state
      const before = memory();
      for (let i = 0; i < 3; i++) step();
      const after = memory();
      assert.equal(after.liveTensors, before.liveTensors);
      assert.equal(after.liveBytes, before.liveBytes);
      optimizer.dispose();
      x.dispose();
      y.dispose();
      model.dispose();
    });
  }
});
