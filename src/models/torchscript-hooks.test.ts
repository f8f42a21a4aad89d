// Forward hooks on the submodules of a TorchScript archive (ScriptModule.forwardHooked through the views of
// TorchScriptModel): the activations PyTorch's register_forward_hook catches (fixtures/torchscript/
// expected-hooks.json, scripts/make-torchscript-fixture.py --hooks), on a flat archive (scripted and traced)
// and on one with submodules inside submodules; masks on a layer's output; gradients through a hook; errors;
// memory.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { withNormReparam } from '../defenses/nft.ts';
import type { BatchNorm2d, Conv2d, Module } from '../nn/index.ts';
import { parameter, withForwardHook } from '../nn/index.ts';
import { backward, copyInPlace, crossEntropy, grad, memory, mul, mulInPlace, noGrad, ones, softmax, type Tensor, tensor, tidy } from '../torch/index.ts';
import { loadTorchScriptModel, type TorchScriptModel } from './torchscript.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixtures = path.join(root, 'fixtures', 'torchscript');
const scripted = path.join(fixtures, 'kws-scripted.pt');
const traced = path.join(fixtures, 'kws-traced-eval.pt');
const nestedFile = path.join(fixtures, 'kws-nested-scripted.pt');
type Enc = { shape: number[]; data: string };
const expected = JSON.parse(readFileSync(path.join(fixtures, 'expected-hooks.json'), 'utf8')) as {
  kws: Record<string, Enc>;
  nested: Record<string, Enc>;
  nestedShape: number[];
  nestedLogits: Enc;
};
const decode = (e: Enc): Float32Array => {
  const raw = Buffer.from(e.data, 'base64');
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
};
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

function input(shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (((i * 7919) % 2001) - 1000) / 1024;
  return tensor(data, shape);
}
const kwsInput = () => input([4, 1600]);
const nestedInput = () => input(expected.nestedShape);

const view = (model: TorchScriptModel, name: string): Module => {
  const found = model.namedModules().find(([n]) => n === name);
  assert.ok(found, name);
  return found[1];
};

/** Runs fn with a forward hook on each layer (nested), catching inputs and outputs by layer name. */
function withCatch<T>(model: TorchScriptModel, layers: string[], fn: () => T, caught: Map<string, { input: Tensor; output: Tensor; calls: number }>): T {
  return layers.reduceRight<() => T>(
    (inner, name) => () =>
      withForwardHook(
        view(model, name),
        (output, inp) => {
          const prev = caught.get(name);
          caught.set(name, { input: inp, output, calls: (prev?.calls ?? 0) + 1 });
          return undefined;
        },
        inner,
      ),
    fn,
  )();
}

const channelMeans = (t: Tensor): Float32Array => tidy(() => t.mean([0, ...Array.from({ length: t.ndim - 2 }, (_, i) => i + 2)]).toFloat32Array());

describe('forward hooks on a TorchScript model', () => {
  for (const [label, file] of [
    ['scripted', scripted],
    ['traced', traced],
  ] as const) {
    it(`${label}: hooks catch the activations PyTorch's forward hooks catch, and leave the logits bit-identical`, () => {
      const model = loadTorchScriptModel(file);
      const layers = ['conv', 'bn', 'dw', 'bn_dw', 'hidden', 'classifier'];
      tidy(() =>
        noGrad(() => {
          const x = kwsInput();
          const plain = model.forward(x).toFloat32Array();
          const caught = new Map<string, { input: Tensor; output: Tensor; calls: number }>();
          const hooked = withCatch(model, layers, () => model.forward(x), caught).toFloat32Array();
          assert.deepEqual(hooked, plain);
          for (const name of layers) {
            const got = caught.get(name);
            assert.ok(got, name);
            assert.equal(got.calls, 1);
            const diff = maxDiff(channelMeans(got.output), decode(expected.kws[`${name}.output.mean`]));
            assert.ok(diff < 1e-5, `${name}: ${diff}`);
          }
          const classifierInput = caught.get('classifier')?.input as Tensor;
          assert.ok(maxDiff(classifierInput.toFloat32Array(), decode(expected.kws['classifier.input'])) < 1e-5);
          // BatchNorm read the conv's output tensor itself (what CLP's pairing checks)
          assert.equal(caught.get('bn')?.input, caught.get('conv')?.output);
          // the hooked output is the submodule run alone on the hooked input
          const conv = caught.get('conv') as { input: Tensor; output: Tensor };
          assert.deepEqual((view(model, 'conv') as Conv2d).forward(conv.input).toFloat32Array(), conv.output.toFloat32Array());
        }),
      );
      model.dispose();
    });
  }

  it('hooks submodules inside submodules (and a block together with its own layers), as PyTorch does', () => {
    const model = loadTorchScriptModel(nestedFile);
    const layers = ['bn', 'layers.0', 'layers.0.bn1', 'layers.1.conv1', 'layers.1.bn2', 'layers.1.downsample', 'layers.1.downsample.1', 'fc'];
    tidy(() =>
      noGrad(() => {
        const x = nestedInput();
        const plain = model.forward(x).toFloat32Array();
        assert.ok(maxDiff(plain, decode(expected.nestedLogits)) < 1e-5);
        const caught = new Map<string, { input: Tensor; output: Tensor; calls: number }>();
        const hooked = withCatch(model, layers, () => model.forward(x), caught).toFloat32Array();
        assert.ok(maxDiff(hooked, plain) < 1e-6);
        for (const name of layers) {
          const got = caught.get(name);
          assert.ok(got, name);
          assert.equal(got.calls, 1, name);
          const diff = maxDiff(channelMeans(got.output), decode(expected.nested[`${name}.output.mean`]));
          assert.ok(diff < 1e-5, `${name}: ${diff}`);
        }
        assert.ok(maxDiff((caught.get('fc') as { input: Tensor }).input.toFloat32Array(), decode(expected.nested['fc.input'])) < 1e-5);
      }),
    );
    model.dispose();
  });

  it('a mask on a layer output: all ones leaves the logits bit-identical; zero on channel 3 equals zeroing that channel of the conv', () => {
    const model = loadTorchScriptModel(scripted);
    const conv = view(model, 'conv') as Conv2d;
    tidy(() =>
      noGrad(() => {
        const x = kwsInput();
        const plain = model.forward(x).toFloat32Array();
        const maskOf = (values: number[]) => tensor(values, [1, 6, 1, 1]);
        const masked = (m: Tensor, layer = 'conv') =>
          withForwardHook(
            view(model, layer),
            (out) => mul(out, m),
            () => model.forward(x),
          ).toFloat32Array();
        assert.deepEqual(masked(maskOf([1, 1, 1, 1, 1, 1])), plain);
        assert.deepEqual(masked(maskOf([1, 1, 1, 1, 1, 1]), 'bn_dw'), plain);
        const zeroed = masked(maskOf([1, 1, 1, 0, 1, 1]));
        assert.ok(maxDiff(zeroed, plain) > 1e-4);
        const keep = tensor([1, 1, 1, 0, 1, 1]);
        const w = conv.weight.clone();
        const b = (conv.bias as Tensor).clone();
        mulInPlace(conv.weight, keep.reshape([6, 1, 1, 1]));
        mulInPlace(conv.bias as Tensor, keep);
        const pruned = model.forward(x).toFloat32Array();
        copyInPlace(conv.weight, w);
        copyInPlace(conv.bias as Tensor, b);
        assert.ok(maxDiff(zeroed, pruned) < 1e-6, `${maxDiff(zeroed, pruned)}`);
        assert.deepEqual(model.forward(x).toFloat32Array(), plain);
      }),
    );
    model.dispose();
  });

  it("gradients reach a mask through the archive's graph, and the gradient with respect to a hooked output is the graph's", () => {
    const model = loadTorchScriptModel(scripted);
    const conv = view(model, 'conv') as Conv2d;
    const labels = tensor([0, 1, 2, 3], [4], { dtype: 'int64' });
    tidy(() => {
      const x = kwsInput();
      // d loss / d m_c at m = 1 for y = conv(x) * m equals sum(dW_c W_c) + db_c b_c: scaling channel c's weights
      const mask = parameter(ones([1, 6, 1, 1]));
      const loss = withForwardHook(
        conv,
        (out) => mul(out, mask),
        () => crossEntropy(model.forward(x), labels),
      );
      const [gm] = grad(loss, [mask]) as Tensor[];
      const plainLoss = crossEntropy(model.forward(x), labels);
      const [gw, gb] = grad(plainLoss, [conv.weight, conv.bias as Tensor]) as Tensor[];
      const viaWeights = mul(gw, conv.weight)
        .sum([1, 2, 3])
        .add(mul(gb, conv.bias as Tensor));
      assert.ok(maxDiff(gm.toFloat32Array(), viaWeights.toFloat32Array()) < 1e-6);
      assert.ok(Math.max(...gm.toArray().map(Math.abs)) > 1e-4);
      // the classifier's output is the logits: d mean CE / d logits = (softmax - onehot) / B
      let logits: Tensor | null = null;
      const ce = withForwardHook(
        view(model, 'classifier'),
        (out) => {
          logits = out;
          return undefined;
        },
        () => crossEntropy(model.forward(x), labels),
      );
      const [gl] = grad(ce, [logits as unknown as Tensor]) as Tensor[];
      const p = softmax(logits as unknown as Tensor, 1).toArray();
      const want = p.map((v, i) => (v - (i % 4 === Math.floor(i / 4) ? 1 : 0)) / 4);
      assert.ok(maxDiff(gl.toFloat32Array(), want) < 1e-6);
      mask.dispose();
    });
    model.dispose();
  });

  it("a weight swapped for one call (NFT's and ANP's masks) trains through the archive's BatchNorm", () => {
    const model = loadTorchScriptModel(nestedFile);
    const bn = view(model, 'layers.0.bn1') as BatchNorm2d;
    const layer = { name: 'layers.0.bn1', module: bn, kind: 'batch-norm' as const, channels: 4 };
    tidy(() => {
      const x = nestedInput();
      const labels = tensor([0, 1, 2, 0], [4], { dtype: 'int64' });
      const mask = parameter(ones([4]));
      const plain = noGrad(() => model.forward(x).toFloat32Array());
      const loss = withNormReparam(
        [layer],
        () => ({ weight: mul(bn.weight, mask) }),
        () => crossEntropy(model.forward(x), labels),
      );
      const [gm] = grad(loss, [mask]) as Tensor[];
      // gamma * m at m = 1: d loss / d m = d loss / d gamma * gamma
      const [gg] = grad(crossEntropy(model.forward(x), labels), [bn.weight]) as Tensor[];
      assert.ok(maxDiff(gm.toFloat32Array(), mul(gg, bn.weight).toFloat32Array()) < 1e-6);
      assert.ok(Math.max(...gm.toArray().map(Math.abs)) > 1e-5);
      // the archive's own weight is back in its slot
      assert.deepEqual(
        noGrad(() => model.forward(x).toFloat32Array()),
        plain,
      );
      mask.dispose();
    });
    model.dispose();
  });

  it("a hook's error reaches the caller as thrown, and the model runs on afterwards", () => {
    const model = loadTorchScriptModel(scripted);
    tidy(() =>
      noGrad(() => {
        const x = kwsInput();
        const plain = model.forward(x).toFloat32Array();
        assert.throws(
          () =>
            withForwardHook(
              view(model, 'bn_dw'),
              () => {
                throw new RangeError('from the hook');
              },
              () => model.forward(x),
            ),
          (e: Error) => e instanceof RangeError && e.message === 'from the hook',
        );
        assert.throws(
          () =>
            withForwardHook(
              view(model, 'dw'),
              () => ones([2, 2]),
              () => model.forward(x),
            ),
          /hooked forward/,
        );
        assert.deepEqual(model.forward(x).toFloat32Array(), plain);
      }),
    );
    model.dispose();
  });

  it('live tensors stay flat over many hooked, masked training passes', () => {
    const model = loadTorchScriptModel(nestedFile);
    model.train();
    const mask = parameter(ones([1, 8, 1, 1]));
    const labels = tensor([0, 1, 2, 0], [4], { dtype: 'int64' });
    labels.persistent = true;
    const x = nestedInput();
    x.persistent = true;
    const pass = () =>
      tidy(() => {
        let seen: Tensor | null = null;
        const loss = withForwardHook(
          view(model, 'layers.1.bn2'),
          (out) => mul(out, mask),
          () =>
            withForwardHook(
              view(model, 'fc'),
              (_out, inp) => {
                seen = inp;
                return undefined;
              },
              () => crossEntropy(model.forward(x), labels),
            ),
        );
        backward(loss);
        assert.ok(seen);
        mask.grad = null;
        model.zeroGrad();
      });
    for (let i = 0; i < 20; i++) pass();
    const before = memory().liveTensors;
    for (let i = 0; i < 300; i++) pass();
    assert.equal(memory().liveTensors, before);
    mask.dispose();
    labels.dispose();
    x.dispose();
    model.dispose();
  });
});
