// The GN-FT authors' KWS ResNet (specs/models.md `resnet`; identical to ResNet in
// shared/peers/torch_reference.py, so state-dict names and shapes match PyTorch's).
import { BatchNorm2d, Conv2d, Linear, Module, Sequential } from '../nn/index.ts';
import { add, avgPool2d, relu, type Tensor } from '../torch/index.ts';

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

  forward(x: Tensor): Tensor {
    const y = this.bn2.forward(this.conv2.forward(relu(this.bn1.forward(this.conv1.forward(x)))));
    return relu(add(y, this.downsample ? this.downsample.forward(x) : x));
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

export class ResNet extends Module {
  conv: Conv2d;
  bn: BatchNorm2d;
  layer1: Sequential;
  layer2: Sequential;
  layer3: Sequential;
  conv2d: Conv2d;
  fc: Linear;
  readonly config: ResNetConfig;

  constructor(config: Partial<ResNetConfig> = {}) {
    super();
    this.config = { ...resnetDefaults, ...config };
    const [channels] = this.config.inputShape;
    this.conv = conv3x3(channels, 16);
    this.bn = new BatchNorm2d(16);
    this.layer1 = new Sequential(new BasicBlock(16, 16), new BasicBlock(16, 16));
    this.layer2 = new Sequential(new BasicBlock(16, 32, 2), new BasicBlock(32, 32));
    this.layer3 = new Sequential(new BasicBlock(32, 64, 2), new BasicBlock(64, 64));
    this.conv2d = new Conv2d(64, 64, 1, { stride: [2, 1] });
    this.fc = new Linear(resnetFlatSize(this.config.inputShape), this.config.classes);
  }

  forward(x: Tensor): Tensor {
    let y = relu(this.bn.forward(this.conv.forward(x)));
    y = this.layer3.forward(this.layer2.forward(this.layer1.forward(y)));
    y = avgPool2d(this.conv2d.forward(y), 4);
    return this.fc.forward(y.flatten(1));
  }
}
