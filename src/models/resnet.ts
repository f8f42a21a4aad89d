// The GN-FT authors' KWS ResNet (specs/models.md `resnet`; identical to ResNet in
// shared/peers/torch_reference.py, so state-dict names and shapes match PyTorch's).
import { BatchNorm2d, Conv2d, chain, Linear, Module, release, Sequential } from '../nn/index.ts';
import { add, addInPlace, avgPool2d, relu, reluInPlace, type Tensor } from '../torch/index.ts';

import { ConfiguredModel } from './configured-model.ts';
import { registerModel } from './registry.ts';

/** ReLU on a tensor the caller owns and no one else reads (a fresh BatchNorm output): in place; else a copy. */
function reluOwnedInPlace(t: Tensor): Tensor {
  if (t.persistent) return relu(t);
  reluInPlace(t);
  return t;
}

const conv3x3 = (inC: number, outC: number, stride = 1) => new Conv2d(inC, outC, 3, { stride, padding: 1, bias: false });

/** Two 3x3 convs with BatchNorm and a residual; the shortcut is conv3x3 + BN when the shape changes. */
export class BasicBlock extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  downsample: Sequential | null;

  constructor(inC: number, outC: number, stride = 1) {
    super();
    this.conv1 = conv3x3(inC, outC, stride);
    this.bn1 = new BatchNorm2d(outC);
    this.conv2 = conv3x3(outC, outC);
    this.bn2 = new BatchNorm2d(outC);
    this.downsample = stride !== 1 || inC !== outC ? new Sequential(conv3x3(inC, outC, stride), new BatchNorm2d(outC)) : null;
  }

  // The ReLUs and the residual add work in place on BatchNorm's fresh outputs, as torchvision's blocks do
  // (inplace=True): BatchNorm's backward needs its input, not its output, and ReLU's needs only its result,
  // so autograd is unaffected, and each saves a full activation-sized write to a new buffer (issue 13).
  // Conv outputs are never changed in place: hooks (NGF, zones, Fine-Pruning) hold and replace those.
  forward(x: Tensor): Tensor {
    const y = chain(
      x,
      (t) => this.conv1.forward(t),
      (t) => this.bn1.forward(t),
      reluOwnedInPlace,
      (t) => this.conv2.forward(t),
      (t) => this.bn2.forward(t),
    );
    const shortcut = this.downsample ? this.downsample.forward(x) : x;
    if (y.persistent || y === x) {
      // a hook kept BatchNorm's output: leave it as it is
      const sum = add(y, shortcut);
      release(shortcut, x);
      return chain(sum, relu);
    }
    addInPlace(y, shortcut);
    release(shortcut, x);
    return reluOwnedInPlace(y);
  }
}

export interface ResNetConfig {
  classes: number;
  /** input [1, frames, coefficients]; MFCC 101x40 by default */
  inputShape: [number, number, number];
}

export const resnetDefaults: ResNetConfig = { classes: 10, inputShape: [1, 101, 40] };

/** Flattened size after the stem, three stages (strides 1, 2, 2), the (2,1)-strided 1x1 conv and AvgPool 4. */
export function resnetFlatSize(inputShape: [number, number, number]): number {
  const convOut = (n: number, stride: number) => Math.floor((n - 1) / stride) + 1;
  let [h, w] = [inputShape[1], inputShape[2]];
  for (const s of [2, 2]) [h, w] = [convOut(h, s), convOut(w, s)];
  [h, w] = [convOut(h, 2), w];
  return 64 * Math.floor(h / 4) * Math.floor(w / 4);
}

export class ResNet extends ConfiguredModel<ResNetConfig> {
  conv: Conv2d;
  bn: BatchNorm2d;
  layer1: Sequential;
  layer2: Sequential;
  layer3: Sequential;
  conv2d: Conv2d;
  fc: Linear;

  constructor(config: Partial<ResNetConfig> = {}) {
    super(resnetDefaults, config);
    const [channels] = this.config.inputShape;
    this.conv = conv3x3(channels, 16);
    this.bn = new BatchNorm2d(16);
    this.layer1 = new Sequential(new BasicBlock(16, 16), new BasicBlock(16, 16));
    this.layer2 = new Sequential(new BasicBlock(16, 32, 2), new BasicBlock(32, 32));
    this.layer3 = new Sequential(new BasicBlock(32, 64, 2), new BasicBlock(64, 64));
    this.conv2d = new Conv2d(64, 64, 1, { stride: [2, 1] });
    const flat = resnetFlatSize(this.config.inputShape);
    if (flat === 0) {
      const [, frames, coefficients] = this.config.inputShape;
      throw new Error(
        `resnet: an input of ${frames} frames x ${coefficients} coefficients is too small (it needs at least 25 x 13 to survive the strides and the 4x4 pooling); use a longer clip or more coefficients`,
      );
    }
    this.fc = new Linear(flat, this.config.classes);
  }

  forward(x: Tensor): Tensor {
    // Front-ends give [batch, frames, coefficients]; the convolutions want one channel.
    const withChannel = x.ndim === 3 ? x.unsqueeze(1) : x;
    // Weights in channels_last (see Module.channelsLast) want the input in that layout too.
    const input = this.conv.weight.isChannelsLast && !withChannel.isChannelsLast ? chain(withChannel, (t) => t.contiguous('channelsLast')) : withChannel;
    const y = chain(
      input,
      (t) => this.conv.forward(t),
      (t) => this.bn.forward(t),
      reluOwnedInPlace,
      (t) => this.layer1.forward(t),
      (t) => this.layer2.forward(t),
      (t) => this.layer3.forward(t),
      (t) => this.conv2d.forward(t),
      (t) => avgPool2d(t, 4),
      (t) => t.flatten(1),
      (t) => this.fc.forward(t),
    );
    if (input !== x) release(input);
    return y;
  }

  /** Conv layers (output channels) and the hidden Linear-free trunk, in forward order; shortcuts excluded. */
  neuronLayers(): string[] {
    return this.namedModules()
      .filter(([name, m]) => m instanceof Conv2d && !name.includes('downsample'))
      .map(([name]) => name);
  }
}

registerModel<ResNetConfig>({
  name: 'resnet',
  description: "GN-FT authors' KWS ResNet: 16-32-64 channels, 2 BasicBlocks per stage (specs/models.md)",
  frontEnd: 'mfcc-16k',
  inputShape: [101, 40],
  inputKind: 'spectral',
  inputConfig: ([frames, coefficients]) => {
    const inputShape: [number, number, number] = [1, frames, coefficients];
    if (resnetFlatSize(inputShape) < 1) throw new Error(`needs at least 16x4 frames x coefficients for its strides and AvgPool 4`);
    return { inputShape };
  },
  defaults: { ...resnetDefaults },
  build: (config) => new ResNet(config),
  neuronLayers: (model) => (model as ResNet).neuronLayers(),
});
