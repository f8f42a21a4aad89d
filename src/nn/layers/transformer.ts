import { gelu, relu, type Tensor, tidy } from '../../torch/index.ts';
import { Module } from '../module.ts';
import { MultiheadAttention } from './attention.ts';
import { Dropout } from './basic.ts';
import { Linear } from './linear.ts';
import { LayerNorm } from './norm.ts';

export type Activation = 'relu' | 'gelu' | ((x: Tensor) => Tensor);

export interface TransformerEncoderLayerOptions {
  /** hidden size of the feed-forward block (default 2048, PyTorch's) */
  dimFeedforward?: number;
  /** dropout after attention, inside and after the feed-forward block, and on attention weights (default 0.1) */
  dropout?: number;
  /** feed-forward activation (default 'relu'; 'gelu' is the exact erf form) */
  activation?: Activation;
  layerNormEps?: number;
  /** [batch, seq, dModel] instead of [seq, batch, dModel] (default false) */
  batchFirst?: boolean;
  /** pre-norm (LayerNorm before attention and feed-forward, Xiong et al. 2020) instead of post-norm (default false) */
  normFirst?: boolean;
}

export interface EncoderCallOptions {
  /** [batch, seq]: true (bool) marks padding positions the attention ignores; a float mask is added */
  srcKeyPaddingMask?: Tensor | null;
  /** [seq, seq] or [batch * heads, seq, seq] attention mask (see MultiheadAttention) */
  srcMask?: Tensor | null;
}

const activations = { relu, gelu: (x: Tensor) => gelu(x) } as const;

/**
 * One Transformer encoder block, as torch.nn.TransformerEncoderLayer (torch 1.13): self-attention and a
 * feed-forward block, each with a residual connection and LayerNorm, post-norm by default. Field names
 * and order are PyTorch's, so state dicts line up (self_attn.in_proj_weight, linear1.weight, norm1.weight...).
 *
 * ```ts
 * const layer = new TransformerEncoderLayer(64, 4, { dimFeedforward: 256, batchFirst: true });
 * const y = layer.forward(randn([8, 20, 64]));            // [8, 20, 64]
 * ```
 */
export class TransformerEncoderLayer extends Module {
  self_attn: MultiheadAttention;
  linear1: Linear;
  dropout: Dropout;
  linear2: Linear;
  norm1: LayerNorm;
  norm2: LayerNorm;
  dropout1: Dropout;
  dropout2: Dropout;
  readonly normFirst: boolean;
  readonly batchFirst: boolean;
  readonly activation: (x: Tensor) => Tensor;

  constructor(
    readonly dModel: number,
    readonly nhead: number,
    opts: TransformerEncoderLayerOptions = {},
  ) {
    super();
    const p = opts.dropout ?? 0.1;
    const ff = opts.dimFeedforward ?? 2048;
    const eps = opts.layerNormEps ?? 1e-5;
    this.batchFirst = opts.batchFirst ?? false;
    this.normFirst = opts.normFirst ?? false;
    // Assigned in PyTorch's order: the state dict follows it.
    this.self_attn = new MultiheadAttention(dModel, nhead, { dropout: p, batchFirst: this.batchFirst });
    this.linear1 = new Linear(dModel, ff);
    this.dropout = new Dropout(p);
    this.linear2 = new Linear(ff, dModel);
    this.norm1 = new LayerNorm(dModel, eps);
    this.norm2 = new LayerNorm(dModel, eps);
    this.dropout1 = new Dropout(p);
    this.dropout2 = new Dropout(p);
    const activation = opts.activation ?? 'relu';
    this.activation = typeof activation === 'function' ? activation : activations[activation];
    if (!this.activation) throw new Error(`TransformerEncoderLayer: activation must be 'relu', 'gelu' or a function, got ${String(activation)}`);
  }

  /** src: [seq, batch, dModel] ([batch, seq, dModel] with batchFirst; [seq, dModel] unbatched). Same shape out. */
  forward(src: Tensor, opts: EncoderCallOptions = {}): Tensor {
    return tidy(() => {
      let x = src;
      if (this.normFirst) {
        x = x.add(this.selfAttentionBlock(this.norm1.forward(x), opts));
        x = x.add(this.feedForwardBlock(this.norm2.forward(x)));
      } else {
        x = this.norm1.forward(x.add(this.selfAttentionBlock(x, opts)));
        x = this.norm2.forward(x.add(this.feedForwardBlock(x)));
      }
      return x;
    });
  }

  private selfAttentionBlock(x: Tensor, opts: EncoderCallOptions): Tensor {
    const { output } = this.self_attn.forward(x, x, x, { attnMask: opts.srcMask, keyPaddingMask: opts.srcKeyPaddingMask, needWeights: false });
    return this.dropout1.forward(output);
  }

  private feedForwardBlock(x: Tensor): Tensor {
    return this.dropout2.forward(this.linear2.forward(this.dropout.forward(this.activation(this.linear1.forward(x)))));
  }
}

export interface TransformerEncoderOptions {
  /** a final normalisation after the last layer (PyTorch's `norm`; pre-norm stacks usually want one) */
  norm?: LayerNorm | null;
  /**
   * Start every layer from the first one's weights (default true): PyTorch's TransformerEncoder
   * deep-copies the one layer it is given, so its layers begin identical.
   */
  identicalInit?: boolean;
}

/**
 * A stack of encoder layers, as torch.nn.TransformerEncoder: children `layers.0`, `layers.1`, ... and
 * an optional final `norm`. Outputs are those of PyTorch's composite (training) path. PyTorch's
 * inference fast path (eval, no grad, batch first, post-norm, a bool srcKeyPaddingMask) agrees at
 * real positions but returns zeros at padded ones; here padded positions keep their computed values.
 *
 * ```ts
 * const encoder = new TransformerEncoder(() => new TransformerEncoderLayer(64, 4, { batchFirst: true }), 6);
 * ```
 */
export class TransformerEncoder extends Module {
  layers: TransformerEncoderLayer[];
  norm: LayerNorm | null;

  constructor(
    layerFactory: () => TransformerEncoderLayer,
    readonly numLayers: number,
    opts: TransformerEncoderOptions = {},
  ) {
    super();
    if (!Number.isInteger(numLayers) || numLayers < 1) throw new RangeError(`TransformerEncoder numLayers must be a positive integer, got ${numLayers}`);
    this.layers = Array.from({ length: numLayers }, () => layerFactory());
    this.norm = opts.norm ?? null;
    if (opts.identicalInit ?? true) {
      const first = this.layers[0].stateDict();
      for (const layer of this.layers.slice(1)) layer.loadStateDict(first);
    }
  }

  forward(src: Tensor, opts: EncoderCallOptions = {}): Tensor {
    return tidy(() => {
      let x = src;
      for (const layer of this.layers) x = layer.forward(x, opts);
      return this.norm ? this.norm.forward(x) : x;
    });
  }
}
