// Small CNN of Samizade et al. (ICASSP'20) as the GN-FT authors ported it to PyTorch (attacks.md section 8,
// [GNFT] utils/models.py `smallcnn`): field names match that port, so state dicts line up with it.
import { BatchNorm2d, Conv2d, chain, Dropout, Linear, release } from '../nn/index.ts';
import { maxPool2d, relu, type Tensor } from '../torch/index.ts';
import { ConfiguredModel } from './configured-model.ts';
import { registerModel } from './registry.ts';

export interface SmallCnnConfig {
  classes: number;
  /** input [1, frames, coefficients]; MFCC 101x40 by default */
  inputShape: [number, number, number];
}

export const smallCnnDefaults: SmallCnnConfig = { classes: 10, inputShape: [1, 101, 40] };

/** Flattened size after the three conv/pool stages: 3072 for 101x40, 896 for 32x40, 224 for 32x13. */
export function smallCnnFlatSize(inputShape: [number, number, number]): number {
  const conv2x2 = (n: number) => n - 1;
  const pool = (n: number, kernel: number, padding: number) => Math.floor((n + 2 * padding - kernel) / kernel) + 1;
  let [h, w] = [inputShape[1], inputShape[2]];
  [h, w] = [pool(conv2x2(h), 1, 0), pool(conv2x2(w), 3, 0)];
  [h, w] = [pool(conv2x2(h), 2, 1), pool(conv2x2(w), 2, 1)];
  [h, w] = [pool(conv2x2(h), 2, 0), pool(conv2x2(w), 2, 1)];
  if (h < 1 || w < 1) throw new Error(`SmallCnn: input [${inputShape.join(', ')}] is too small for three conv/pool stages`);
  return 32 * h * w;
}

export class SmallCnn extends ConfiguredModel<SmallCnnConfig> {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  conv3: Conv2d;
  bn3: BatchNorm2d;
  drop1: Dropout;
  fc1: Linear;
  drop2: Dropout;
  fc2: Linear;

  constructor(config: Partial<SmallCnnConfig> = {}) {
    super(smallCnnDefaults, config);
    const [channels] = this.config.inputShape;
    this.conv1 = new Conv2d(channels, 64, 2);
    this.bn1 = new BatchNorm2d(64);
    this.conv2 = new Conv2d(64, 64, 2);
    this.bn2 = new BatchNorm2d(64);
    this.conv3 = new Conv2d(64, 32, 2);
    this.bn3 = new BatchNorm2d(32);
    this.drop1 = new Dropout(0.4);
    this.fc1 = new Linear(smallCnnFlatSize(this.config.inputShape), 128);
    this.drop2 = new Dropout(0.5);
    this.fc2 = new Linear(128, this.config.classes);
  }

  /** features [batch, frames, coefficients] (or [batch, 1, frames, coefficients]) -> logits [batch, classes] */
  forward(x: Tensor): Tensor {
    const withChannel = x.ndim === 3 ? x.unsqueeze(1) : x;
    // Weights in channels_last (buildModel's default for 2-D conv models) want the input in that layout too.
    const input = this.conv1.weight.isChannelsLast && !withChannel.isChannelsLast ? withChannel.contiguous('channelsLast') : withChannel;
    if (input !== withChannel && withChannel !== x) release(withChannel);
    // ReLU before BN, as in the port (the Keras original does the same).
    const y = chain(
      input,
      (t) => this.conv1.forward(t),
      relu,
      (t) => this.bn1.forward(t),
      (t) => maxPool2d(t, [1, 3]),
      (t) => this.conv2.forward(t),
      relu,
      (t) => this.bn2.forward(t),
      (t) => maxPool2d(t, 2, { padding: 1 }),
      (t) => this.conv3.forward(t),
      relu,
      (t) => this.bn3.forward(t),
      (t) => maxPool2d(t, 2, { padding: [0, 1] }),
      (t) => this.drop1.forward(t),
      (t) => t.flatten(1),
      (t) => this.fc1.forward(t),
      relu,
      (t) => this.drop2.forward(t),
      // Logits: the port ends in log_softmax, but every loss here is cross-entropy on logits, and
      // log_softmax is monotone, so predictions are unchanged.
      (t) => this.fc2.forward(t),
    );
    if (input !== x) release(input);
    return y;
  }

  neuronLayers(): string[] {
    return ['conv1', 'conv2', 'conv3', 'fc1'];
  }
}

registerModel<SmallCnnConfig>({
  name: 'smallcnn',
  description: 'Small CNN (Samizade et al. 2020): 3 conv64/64/32 2x2 stages with BN and max-pooling, FC128 (GN-FT PyTorch port)',
  frontEnd: 'mfcc-16k',
  inputShape: [101, 40],
  inputKind: 'spectral',
  inputConfig: ([frames, coefficients]) => {
    const inputShape: [number, number, number] = [1, frames, coefficients];
    smallCnnFlatSize(inputShape); // throws when the input is too small for the three conv/pool stages
    return { inputShape };
  },
  defaults: { ...smallCnnDefaults },
  build: (config) => new SmallCnn(config),
  neuronLayers: (model) => (model as SmallCnn).neuronLayers(),
});
