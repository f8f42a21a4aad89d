// Keyword Transformer (Berg et al., Interspeech'21; attacks.md section 8): one token per MFCC frame, a
// learnable CLS token and learned positions, 12 post-norm encoder layers, a Linear head on the CLS output.
import { chain, Dropout, FeatureNorm, Linear, normalParameter, release } from '../nn/index.ts';
import { TransformerEncoder, TransformerEncoderLayer } from '../nn/layers/transformer.ts';
import { add, cat, type Tensor } from '../torch/index.ts';
import { ConfiguredModel } from './configured-model.ts';
import { registerFamily } from './registry.ts';

export interface KwtConfig {
  classes: number;
  /** one clip as the front-end gives it: [frames, coefficients] (mfcc-kwt: 98 frames of 40 MFCCs) */
  inputShape: [number, number];
  /** model width d */
  dim: number;
  depth: number;
  heads: number;
  /** hidden units of each layer's MLP */
  mlpDim: number;
  /** dropout inside the encoder layers (KWT: 0) */
  dropout: number;
  /** dropout on the embedded tokens (KWT: 0; Torch-KWT: 0.1) */
  embeddingDropout: number;
}

// KWT-1 ([KWT] models_data_v2_12_labels/kwt1/flags.txt, Torch-KWT kwt_from_name): d 64, MLP 256, 1 head, depth 12.
export const kwtDefaults: KwtConfig = { classes: 10, inputShape: [98, 40], dim: 64, depth: 12, heads: 1, mlpDim: 256, dropout: 0, embeddingDropout: 0 };

/** KWT's LayerNorm epsilon ([KWT] transformer_utils.py TransformerBlock: 1e-6, not PyTorch's 1e-5). */
const layerNormEps = 1e-6;

export class Kwt extends ConfiguredModel<KwtConfig> {
  input_norm: FeatureNorm;
  cls_token: Tensor;
  pos_embedding: Tensor;
  patch_embedding: Linear;
  dropout: Dropout;
  transformer: TransformerEncoder;
  head: Linear;

  constructor(config: Partial<KwtConfig> = {}) {
    super(kwtDefaults, config);
    const { inputShape, dim, depth, heads, mlpDim, dropout } = this.config;
    const [frames, coefficients] = inputShape;
    if (dim % heads !== 0) throw new Error(`KWT: dim ${dim} is not divisible by heads ${heads}`);
    // N(0, 0.02): the official KWT ([KWT] transformer_utils.py) draws class_emb and pos_emb from a normal of std
    // 0.02 truncated at 2 std (a negligible difference). Torch-KWT's N(0, 1) would swamp the embedded MFCC tokens.
    // Every Linear, attention included, keeps PyTorch's default initialisation.
    this.input_norm = new FeatureNorm(coefficients);
    this.cls_token = normalParameter([1, 1, dim], 0.02);
    this.pos_embedding = normalParameter([1, frames + 1, dim], 0.02);
    this.patch_embedding = new Linear(coefficients, dim);
    this.dropout = new Dropout(this.config.embeddingDropout);
    const makeLayer = () =>
      new TransformerEncoderLayer(dim, heads, { dimFeedforward: mlpDim, dropout, activation: 'gelu', layerNormEps, batchFirst: true, normFirst: false });
    // Independently initialised layers, as Torch-KWT and the Keras original build them (not nn.TransformerEncoder's copies).
    this.transformer = new TransformerEncoder(makeLayer, depth, { identicalInit: false });
    this.head = new Linear(dim, this.config.classes);
  }

  /** MFCC [batch, frames, coefficients] (also [batch, coefficients, frames] or with a channel dim) -> logits */
  forward(x: Tensor): Tensor {
    const tokens = this.toTokens(x);
    const batch = tokens.size(0);
    const embedded = chain(
      tokens,
      (t) => this.input_norm.forward(t),
      (t) => this.patch_embedding.forward(t),
    );
    if (tokens !== x) release(tokens);
    const cls = this.cls_token.expand([batch, 1, this.config.dim]);
    const sequence = cat([cls, embedded], 1);
    release(cls);
    release(embedded);
    return chain(
      sequence,
      (t) => add(t, this.pos_embedding),
      (t) => this.dropout.forward(t),
      (t) => this.transformer.forward(t),
      (t) => t.select(1, 0),
      (t) => this.head.forward(t),
    );
  }

  /** [batch, frames, coefficients]: one token per frame. Accepts KWT's own coefficient-major 40x98 too. */
  private toTokens(x: Tensor): Tensor {
    const [frames, coefficients] = this.config.inputShape;
    const input = x.ndim === 4 && x.size(1) === 1 ? x.squeeze(1) : x;
    const [, a, b] = input.shape;
    if (input.ndim === 3 && a === frames && b === coefficients) return input;
    if (input.ndim === 3 && a === coefficients && b === frames) {
      const transposed = input.transpose(1, 2);
      if (input !== x) release(input);
      return transposed;
    }
    throw new Error(`KWT expects MFCC [batch, ${frames}, ${coefficients}] (frames x coefficients), got [${x.shape.join(', ')}]`);
  }

  /** Linear output units in forward order: the token embedding, then each layer's attention output and MLP; the head excluded. */
  neuronLayers(): string[] {
    return this.namedModules()
      .filter(([name, m]) => m instanceof Linear && name !== 'head')
      .map(([name]) => name);
  }
}

registerFamily<KwtConfig>(
  {
    frontEnd: 'mfcc-kwt',
    inputShape: kwtDefaults.inputShape,
    inputKind: 'spectral',
    // one token per frame: the positional embedding has frames + 1 rows
    inputConfig: ([frames, coefficients]) => ({ inputShape: [frames, coefficients] }),
    build: (config) => new Kwt(config),
    neuronLayers: (model) => (model as Kwt).neuronLayers(),
  },
  [
    { name: 'kwt', description: 'KWT-1 (Berg et al. 2021): 98 frame tokens + CLS, 12 post-norm layers, d 64, 1 head, MLP 256 (~0.6M)', defaults: kwtDefaults },
    { name: 'kwt-2', description: 'KWT-2: d 128, 2 heads, MLP 512 (~2.4M)', defaults: { ...kwtDefaults, dim: 128, heads: 2, mlpDim: 512 } },
    { name: 'kwt-3', description: 'KWT-3: d 192, 3 heads, MLP 768 (~5.4M)', defaults: { ...kwtDefaults, dim: 192, heads: 3, mlpDim: 768 } },
  ],
);
