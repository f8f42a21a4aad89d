// EAT, the End-to-end Audio Transformer (Gazneli et al. 2022, arXiv 2204.11479; attacks.md section 8): a
// 1-D conv front-end on the raw waveform, then a post-norm transformer over its 64 frames. Field names
// follow [EAT] modules/soundnet.py `SoundNetRaw`, so state dicts line up with the official PyTorch model.
import { BatchNorm1d, buffer, Conv1d, chain, type LayerModule, LayerNorm, Linear, Module, parameter, release, Sequential } from '../nn/index.ts';
import { TransformerEncoder, TransformerEncoderLayer } from '../nn/layers/transformer.ts';
import {
  abs,
  add,
  cat,
  conv1d,
  leakyRelu,
  max,
  mul,
  noGrad,
  normalInPlace,
  reciprocal,
  reflectionPad1d,
  type Tensor,
  tensor,
  zeroInPlace,
  zeros,
} from '../torch/index.ts';
import { ConfiguredModel } from './configured-model.ts';
import { registerFamily } from './registry.ts';

export interface EatConfig {
  classes: number;
  /** waveform samples per clip; a multiple of 256 (the front-end's total down-sampling) */
  inputSamples: number;
  /** channels after the stem, doubled by every Down block */
  nf: number;
  /** transformer width */
  embedDim: number;
  layers: number;
  heads: number;
  dimFeedforward: number;
  /** down-sampling factors of the first stage: [4, 4, 4] for Speech Commands ([EAT] README `--ds_factors`) */
  factors: number[];
  /** dropout inside the transformer layers ([EAT] TAggregate: 0.1) */
  dropout: number;
}

// EAT-S as trained on Speech Commands ([EAT] README): nf 16, emb 128, 4 layers, 8 heads, FF 512.
export const eatDefaults: EatConfig = {
  classes: 10,
  inputSamples: 16384,
  nf: 16,
  embedDim: 128,
  layers: 4,
  heads: 8,
  dimFeedforward: 512,
  factors: [4, 4, 4],
  dropout: 0.1,
};

/** EAT clips are peak-normalised to this level ([EAT] datasets/speechcommand_dataset.py). */
const peakLevel = 0.95;

// Parameter-free layers, kept as modules so Sequential indices (and state-dict names) match PyTorch's.
class ReflectionPad1d extends Module {
  constructor(readonly padding: number) {
    super();
  }
  forward(x: Tensor): Tensor {
    return reflectionPad1d(x, [this.padding, this.padding]);
  }
}

class LeakyReLU extends Module {
  constructor(readonly slope: number) {
    super();
  }
  forward(x: Tensor): Tensor {
    return leakyRelu(x, this.slope);
  }
}

/**
 * Anti-aliased down-sampling: a fixed depthwise low-pass, the normalised triangle [1, 2, ..., d+1, ..., 2, 1]
 * (length 2d+1), applied with stride d after reflect padding d. Output length ceil(L / d).
 */
export class AADownsample extends Module {
  filt: Tensor;

  constructor(
    readonly channels: number,
    readonly stride: number,
  ) {
    super();
    const size = 2 * stride + 1;
    const triangle = Array.from({ length: size }, (_, i) => stride + 1 - Math.abs(i - stride));
    const total = triangle.reduce((a, b) => a + b, 0);
    const taps = triangle.map((v) => v / total);
    this.filt = buffer(tensor(Array.from({ length: channels }, () => taps).flat(), [channels, 1, size]));
  }

  forward(x: Tensor): Tensor {
    return chain(
      x,
      (t) => reflectionPad1d(t, [this.stride, this.stride]),
      (t) => conv1d(t, this.filt, null, { stride: this.stride, groups: this.channels }),
    );
  }
}

/** Down(c -> 2c, factor d): reflect pad, Conv1d(k = d+1, no bias), BN, LeakyReLU(0.2), anti-aliased stride d. */
export class Down extends Module {
  down: Sequential;

  constructor(channels: number, factor: number) {
    super();
    const kernel = factor + 1;
    this.down = new Sequential(
      new ReflectionPad1d(Math.floor(kernel / 2)),
      new Conv1d(channels, channels * 2, kernel, { bias: false }),
      new BatchNorm1d(channels * 2),
      new LeakyReLU(0.2),
      new AADownsample(channels * 2, factor),
    );
  }

  forward(x: Tensor): Tensor {
    return this.down.forward(x);
  }
}

/**
 * out = shortcut(x) + LReLU(BN(conv1x1(x))) + LReLU(BN(depthwise conv k, dilation δ, reflect-padded)):
 * a time branch (block_t), a channel-mixing branch (block_f) and a linear 1x1 shortcut.
 */
export class ResBlock1dTF extends Module {
  block_t: Sequential;
  block_f: Sequential;
  shortcut: Conv1d;

  constructor(dim: number, dilation = 1, kernel = 15) {
    super();
    this.block_t = new Sequential(
      new ReflectionPad1d(dilation * Math.floor(kernel / 2)),
      new Conv1d(dim, dim, kernel, { bias: false, dilation, groups: dim }),
      new BatchNorm1d(dim),
      new LeakyReLU(0.2),
    );
    this.block_f = new Sequential(new Conv1d(dim, dim, 1, { bias: false }), new BatchNorm1d(dim), new LeakyReLU(0.2));
    this.shortcut = new Conv1d(dim, dim, 1);
  }

  forward(x: Tensor): Tensor {
    const s = this.shortcut.forward(x);
    const f = this.block_f.forward(x);
    const sf = add(s, f);
    release(s);
    release(f);
    const t = this.block_t.forward(x);
    const out = add(sf, t);
    release(sf);
    release(t);
    return out;
  }
}

/** The token aggregator: CLS + 64 frames + positions -> post-norm encoder -> final LayerNorm -> Linear on CLS. */
export class TAggregate extends Module {
  cls_token: Tensor;
  pos_embed: Tensor;
  transformer_enc: TransformerEncoder;
  fc: Linear;

  constructor(tokens: number, config: EatConfig) {
    super();
    const { embedDim, heads, dimFeedforward, layers, dropout, classes } = config;
    // Both zero-initialised, as in [EAT] TAggregate (its normal(0, 0.02) branch never fires: apply() visits modules, not Parameters).
    this.cls_token = parameter(zeros([1, 1, embedDim]));
    this.pos_embed = parameter(zeros([1, tokens + 1, embedDim]));
    const makeLayer = () => new TransformerEncoderLayer(embedDim, heads, { dimFeedforward, dropout, activation: 'gelu', batchFirst: true });
    // nn.TransformerEncoder deep-copies its layer, so the layers start identical (identicalInit), as in [EAT].
    this.transformer_enc = new TransformerEncoder(makeLayer, layers, { norm: new LayerNorm(embedDim) });
    this.fc = new Linear(embedDim, classes);
  }

  /** frames [batch, emb, tokens] -> logits */
  forward(x: Tensor): Tensor {
    const batch = x.size(0);
    const tokens = chain(x, (t) => t.permute([0, 2, 1]));
    const cls = this.cls_token.expand([batch, 1, this.cls_token.size(2)]);
    const withCls = cat([cls, tokens], 1);
    release(cls);
    release(tokens, x);
    // batch_first throughout: [EAT] runs the encoder sequence-first, which computes the same thing.
    return chain(
      withCls,
      (t) => add(t, this.pos_embed),
      (t) => this.transformer_enc.forward(t),
      (t) => t.select(1, 0),
      (t) => this.fc.forward(t),
    );
  }
}

export class Eat extends ConfiguredModel<EatConfig> {
  start: Sequential;
  down: Sequential;
  down2: Sequential;
  project: Conv1d;
  tf: TAggregate;

  constructor(config: Partial<EatConfig> = {}) {
    super(eatDefaults, config);
    const { nf: stemChannels, factors, inputSamples, embedDim } = this.config;
    let nf = stemChannels;
    this.start = new Sequential(new ReflectionPad1d(3), new Conv1d(1, nf, 7, { bias: false }), new BatchNorm1d(nf), new LeakyReLU(0.2));
    const down: LayerModule[] = [];
    factors.forEach((factor, i) => {
      down.push(new Down(nf, factor));
      nf *= 2;
      if (i % 2 === 0) down.push(new ResBlock1dTF(nf, 1, 15));
    });
    this.down = new Sequential(...down);
    const down2: LayerModule[] = [];
    for (const factor of [2, 2]) {
      for (const dilation of [1, 3, 9]) down2.push(new ResBlock1dTF(nf, dilation, 15));
      down2.push(new Down(nf, factor));
      nf *= 2;
    }
    this.down2 = new Sequential(...down2);
    this.project = new Conv1d(nf, embedDim, 1);
    const totalFactor = [...factors, 2, 2].reduce((a, b) => a * b, 1);
    if (inputSamples % totalFactor !== 0) throw new Error(`EAT: inputSamples ${inputSamples} must be a multiple of ${totalFactor}`);
    this.tf = new TAggregate(inputSamples / totalFactor, this.config);
    this.initWeights();
  }

  // [EAT] SoundNetRaw._init_weights: every Conv1d weight ~ N(0, 0.02), conv biases 0; TAggregate._init_weights:
  // every Linear bias 0. BatchNorm/LayerNorm keep their defaults (1, 0); MHA in_proj keeps xavier.
  private initWeights(): void {
    noGrad(() => {
      for (const [, m] of this.namedModules()) {
        if (m instanceof Conv1d) {
          normalInPlace(m.weight, 0, 0.02);
          if (m.bias) zeroInPlace(m.bias);
        } else if (m instanceof Linear && m.bias) zeroInPlace(m.bias);
      }
    });
  }

  /** waveform [batch, samples] (or [batch, 1, samples]) -> logits [batch, classes] */
  forward(x: Tensor): Tensor {
    const wave = x.ndim === 2 ? x.unsqueeze(1) : x;
    if (wave.ndim !== 3 || wave.size(1) !== 1 || wave.size(2) !== this.config.inputSamples) {
      throw new Error(`EAT expects waveforms [batch, ${this.config.inputSamples}], got [${x.shape.join(', ')}]`);
    }
    // Peak normalisation inside the model, so every caller (training, attacks, defenses) feeds EAT what
    // [EAT] trained on: each clip scaled to a peak of 0.95. The 1e-8 floor keeps silent clips finite.
    const scale = chain(
      wave,
      abs,
      (t) => max(t, 2, true),
      (t) => t.clamp(1e-8),
      reciprocal,
      (t) => mul(t, peakLevel),
    );
    const normalised = mul(wave, scale);
    release(scale);
    if (wave !== x) release(wave);
    return chain(
      normalised,
      (t) => this.start.forward(t),
      (t) => this.down.forward(t),
      (t) => this.down2.forward(t),
      (t) => this.project.forward(t),
      (t) => this.tf.forward(t),
    );
  }

  /** Conv output channels and hidden Linear units in forward order; the 1x1 shortcuts and the classifier excluded. */
  neuronLayers(): string[] {
    return this.namedModules()
      .filter(([name, m]) => (m instanceof Conv1d && !name.endsWith('shortcut')) || (m instanceof Linear && name !== 'tf.fc'))
      .map(([name]) => name);
  }
}

export const eatMDefaults: EatConfig = { ...eatDefaults, nf: 32, embedDim: 256, layers: 6, heads: 16, dimFeedforward: 2048 };

// Batch 32 on small data sets: EAT's stem BatchNorm sees activations of variance ~1e-4, so its running
// variance (initialised to 1, momentum 0.1) needs well over 100 updates to forget the 1. At batch 128 the
// small synthetic SCD-10 gives 24 updates an epoch, and after two epochs eval mode still scaled the stem's
// output down ~50x: 71% training accuracy, 10% validation (86% with batch statistics). The EAT authors
// trained on ~85k clips, thousands of updates an epoch.
const eatFastRecipe = { batchSize: 32 };

function eatInputConfig([samples]: readonly number[]): Partial<EatConfig> {
  if (samples % 256 !== 0) throw new Error(`EAT down-samples by 256 in all, so its input length must be a multiple of 256 (got ${samples})`);
  return { inputSamples: samples };
}

registerFamily<EatConfig>(
  {
    frontEnd: 'waveform-16k',
    inputShape: [16384],
    inputKind: 'waveform',
    inputConfig: eatInputConfig,
    build: (config) => new Eat(config),
    neuronLayers: (model) => (model as Eat).neuronLayers(),
    fastRecipe: eatFastRecipe,
  },
  [
    {
      name: 'eat',
      description: 'EAT-S (Gazneli et al. 2022): raw-waveform conv front-end (x256 down-sampling) + 4-layer post-norm transformer, emb 128',
      defaults: eatDefaults,
    },
    { name: 'eat-m', description: 'EAT-M (Gazneli et al. 2022): nf 32, emb 256, 6 layers, 16 heads, FF 2048', defaults: eatMDefaults },
  ],
);
