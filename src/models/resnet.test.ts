// ResNet's in-place ReLUs and residual adds (resnet.ts) against the same network computed out of place:
// identical logits, input gradients and parameter gradients, in training and eval mode, in both layouts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Module } from '../nn/index.ts';
import { add, avgPool2d, grad, keep, manualSeed, memory, mul, randn, relu, sum, type Tensor, tidy } from '../torch/index.ts';
import { type BasicBlock, ResNet } from './resnet.ts';

const inputShape: [number, number, number] = [1, 40, 16];

/** The block as the PyTorch reference writes it: F.relu(bn1(conv1(x))), then F.relu(y + shortcut). */
function blockOutOfPlace(b: BasicBlock, x: Tensor): Tensor {
  const y = b.bn2.forward(b.conv2.forward(relu(b.bn1.forward(b.conv1.forward(x)))));
  return relu(add(y, b.downsample ? b.downsample.forward(x) : x));
}

function resnetOutOfPlace(m: ResNet, x: Tensor): Tensor {
  let t = x.unsqueeze(1);
  if (m.conv.weight.isChannelsLast) t = t.contiguous('channelsLast');
  t = relu(m.bn.forward(m.conv.forward(t)));
  for (const layer of [m.layer1, m.layer2, m.layer3]) {
    for (const block of layer.layers as BasicBlock[]) t = blockOutOfPlace(block, t);
  }
  return m.fc.forward(avgPool2d(m.conv2d.forward(t), 4).flatten(1));
}

/** Logits, the input's gradient and every parameter's gradient of sum(logits * w). */
function pass(model: ResNet, x: Tensor, w: Tensor, forward: (x: Tensor) => Tensor) {
  return tidy(() => {
    const input = x.detach();
    input.requiresGrad = true;
    const logits = forward(input);
    const params = model.parameters();
    const grads = grad(sum(mul(logits, w)), [input, ...params]);
    return { logits: logits.toFloat32Array(), grads: grads.map((g) => (g as Tensor).toFloat32Array()) };
  });
}

function assertClose(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, what);
  const scale = Math.max(1e-6, ...Array.from(b, Math.abs));
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-5 * scale, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

describe('ResNet in place', () => {
  for (const layout of ['contiguous', 'channelsLast'] as const) {
    for (const mode of ['train', 'eval'] as const) {
      it(`${layout}, ${mode} mode: logits and gradients equal the out-of-place network's`, () => {
        manualSeed(3);
        const model = new ResNet({ classes: 4, inputShape });
        if (layout === 'channelsLast') model.channelsLast();
        // running statistics away from their initial values, so eval mode is not the identity BatchNorm
        tidy(() => void model.train().forward(randn([8, inputShape[1], inputShape[2]])));
        model.train(mode === 'train');
        const x = keep(randn([5, inputShape[1], inputShape[2]]));
        const w = keep(randn([5, 4]));
        const before = x.toFloat32Array();
        const live = memory().liveTensors;
        const reference = pass(model, x, w, (t) => resnetOutOfPlace(model, t));
        const inPlace = pass(model, x, w, (t) => model.forward(t));
        assertClose(inPlace.logits, reference.logits, 'logits');
        assert.equal(inPlace.grads.length, reference.grads.length);
        inPlace.grads.forEach((g, i) => assertClose(g, reference.grads[i], i === 0 ? 'input gradient' : `gradient of parameter ${i - 1}`));
        assert.deepEqual(x.toFloat32Array(), before, 'the input is not changed');
        assert.equal(memory().liveTensors, live, 'no tensor outlives the passes');
        x.dispose();
        w.dispose();
        (model as Module).dispose();
      });
    }
  }
});
