import { bmm, chunk, dropout, isFloating, linear, maskedFill, noGrad, softmax, type Tensor, tidy, zeroInPlace, zeros } from '../../torch/index.ts';
import { call } from '../../torch/ops/dispatch.ts';
import { xavierUniform } from '../init.ts';
import { Module, parameter } from '../module.ts';
import { Linear } from './linear.ts';

export interface MultiheadAttentionOptions {
  /** dropout on the attention weights, in training mode (default 0) */
  dropout?: number;
  /** in_proj_bias and out_proj.bias (default true) */
  bias?: boolean;
  /** inputs and output as [batch, seq, embed] instead of [seq, batch, embed] (default false) */
  batchFirst?: boolean;
}

export interface AttentionCallOptions {
  /**
   * [batch, source] (unbatched: [source]): true (bool) marks keys to ignore; a float mask is added to
   * the attention scores.
   */
  keyPaddingMask?: Tensor | null;
  /** [target, source] or [batch * heads, target, source]: true (bool) forbids attending; float is added. */
  attnMask?: Tensor | null;
  /** also return the attention weights (default true, as PyTorch) */
  needWeights?: boolean;
  /** weights averaged over heads [batch, target, source] (default true) or per head [batch, heads, target, source] */
  averageAttnWeights?: boolean;
}

/** An additive float mask from a bool (true: -inf) or float mask. */
function additiveMask(mask: Tensor, dtype: Tensor['dtype'], what: string): Tensor {
  if (mask.dtype === 'bool') return maskedFill(zeros(mask.shape, { dtype, device: mask.device }), mask, Number.NEGATIVE_INFINITY);
  if (isFloating(mask.dtype)) return mask;
  throw new Error(`MultiheadAttention: ${what} must be bool or floating point, got ${mask.dtype}`);
}

/**
 * Multi-head scaled dot-product attention, as torch.nn.MultiheadAttention with equal query, key and
 * value sizes: packed in_proj_weight [3E, E] (xavier uniform), in_proj_bias [3E] (zeros), out_proj a
 * Linear (default weight init, zero bias). The arithmetic follows torch.nn.functional's
 * multi_head_attention_forward step by step (torch 1.13), so outputs agree to float rounding.
 *
 * ```ts
 * const attn = new MultiheadAttention(64, 4, { batchFirst: true });
 * const { output, weights } = attn.forward(x, x, x);    // [batch, seq, 64], [batch, seq, seq]
 * ```
 */
export class MultiheadAttention extends Module {
  in_proj_weight: Tensor;
  in_proj_bias: Tensor | null;
  out_proj: Linear;
  readonly headDim: number;
  readonly dropout: number;
  readonly batchFirst: boolean;

  constructor(
    readonly embedDim: number,
    readonly numHeads: number,
    opts: MultiheadAttentionOptions = {},
  ) {
    super();
    this.headDim = Math.floor(embedDim / numHeads);
    if (!Number.isInteger(embedDim) || !Number.isInteger(numHeads) || numHeads < 1 || this.headDim * numHeads !== embedDim) {
      throw new RangeError(`MultiheadAttention: embedDim (${embedDim}) must be divisible by numHeads (${numHeads})`);
    }
    this.dropout = opts.dropout ?? 0;
    if (!(this.dropout >= 0 && this.dropout < 1)) throw new RangeError(`MultiheadAttention dropout must be in [0, 1), got ${this.dropout}`);
    this.batchFirst = opts.batchFirst ?? false;
    const bias = opts.bias ?? true;
    this.in_proj_weight = xavierUniform([3 * embedDim, embedDim]);
    this.in_proj_bias = bias ? parameter(zeros([3 * embedDim])) : null;
    this.out_proj = new Linear(embedDim, embedDim, { bias });
    const outBias = this.out_proj.bias;
    if (outBias) noGrad(() => zeroInPlace(outBias));
  }

  /**
   * Attends from `query` to `key`/`value`: [target, batch, E] / [source, batch, E] ([batch, ...] with
   * batchFirst; [seq, E] unbatched). Returns the output shaped like query and, with needWeights, the
   * attention weights.
   */
  forward(query: Tensor, key: Tensor, value: Tensor, opts: AttentionCallOptions = {}): { output: Tensor; weights?: Tensor } {
    const E = this.embedDim;
    const batched = query.ndim === 3;
    const wantDims = batched ? 3 : 2;
    for (const [name, t] of [
      ['query', query],
      ['key', key],
      ['value', value],
    ] as const) {
      if (t.ndim !== wantDims || t.shape[t.ndim - 1] !== E) {
        throw new Error(
          `MultiheadAttention(${E}, ${this.numHeads}): ${name} must be [seq, batch, ${E}]${this.batchFirst ? ' (batchFirst: [batch, seq, ...])' : ''} or unbatched [seq, ${E}] like the query, got [${t.shape.join(', ')}]`,
        );
      }
    }
    if (key.shape.join(',') !== value.shape.join(','))
      throw new Error(`MultiheadAttention: key [${key.shape.join(', ')}] and value [${value.shape.join(', ')}] must have the same shape`);
    const needWeights = opts.needWeights ?? true;

    return tidy(() => {
      // Work in [seq, batch, E] as PyTorch does; keep track of which inputs are the same tensor, since
      // self-attention projects once.
      const selfAttention = query === key && key === value;
      const sharedKeyValue = key === value;
      const toSeqFirst = (t: Tensor) => (!batched ? t.unsqueeze(1) : this.batchFirst ? t.transpose(0, 1) : t);
      const q0 = toSeqFirst(query);
      const k0 = selfAttention ? q0 : toSeqFirst(key);
      const v0 = sharedKeyValue ? k0 : toSeqFirst(value);
      const [targetLen, batch] = q0.shape;
      const sourceLen = k0.shape[0];
      const heads = this.numHeads;

      let q: Tensor;
      let k: Tensor;
      let v: Tensor;
      const w = this.in_proj_weight;
      const b = this.in_proj_bias;
      if (selfAttention) {
        [q, k, v] = chunk(linear(q0, w, b), 3, -1);
      } else {
        const [wq, wk, wv] = chunk(w, 3, 0);
        const [bq, bk, bv] = b ? chunk(b, 3, 0) : [null, null, null];
        q = linear(q0, wq, bq);
        if (sharedKeyValue) {
          // PyTorch's encoder-decoder branch: one projection for key and value together.
          const [wkv, bkv] = [w.narrow(0, E, 2 * E), b ? b.narrow(0, E, 2 * E) : null];
          [k, v] = chunk(linear(k0, wkv, bkv), 2, -1);
        } else {
          k = linear(k0, wk, bk);
          v = linear(v0, wv, bv);
        }
      }

      let mask: Tensor | null = null;
      if (opts.attnMask) {
        const m = opts.attnMask;
        const want2 = [targetLen, sourceLen];
        const want3 = [batch * heads, targetLen, sourceLen];
        if (m.ndim === 2 && m.shape.join(',') === want2.join(',')) mask = additiveMask(m, q.dtype, 'attnMask').unsqueeze(0);
        else if (m.ndim === 3 && m.shape.join(',') === want3.join(',')) mask = additiveMask(m, q.dtype, 'attnMask');
        else throw new Error(`MultiheadAttention: attnMask must be [${want2.join(', ')}] or [${want3.join(', ')}], got [${m.shape.join(', ')}]`);
      }
      if (opts.keyPaddingMask) {
        const m = batched ? opts.keyPaddingMask : opts.keyPaddingMask.unsqueeze(0);
        if (m.shape.join(',') !== [batch, sourceLen].join(',')) {
          throw new Error(`MultiheadAttention: keyPaddingMask must be [${batch}, ${sourceLen}] (batch, source), got [${opts.keyPaddingMask.shape.join(', ')}]`);
        }
        const padding = additiveMask(m, q.dtype, 'keyPaddingMask')
          .view([batch, 1, 1, sourceLen])
          .expand([-1, heads, -1, -1])
          .reshape([batch * heads, 1, sourceLen]);
        mask = mask ? mask.add(padding) : padding;
      }

      // [seq, batch, E] -> [batch * heads, seq, headDim]
      const splitHeads = (t: Tensor, len: number) =>
        t
          .contiguous()
          .view([len, batch * heads, this.headDim])
          .transpose(0, 1);
      const qh = splitHeads(q, targetLen).div(Math.sqrt(this.headDim));
      const kh = splitHeads(k, sourceLen);
      const vh = splitHeads(v, sourceLen);
      const scores = mask ? call('aten::baddbmm', '', [mask.handle, qh.handle, kh.transpose(-2, -1).handle]) : bmm(qh, kh.transpose(-2, -1));
      let weights = softmax(scores, -1);
      if (this.training && this.dropout > 0) weights = dropout(weights, this.dropout, true);
      const attended = bmm(weights, vh);
      let output = linear(
        attended
          .transpose(0, 1)
          .contiguous()
          .view([targetLen * batch, E]),
        this.out_proj.weight,
        this.out_proj.bias,
      ).view([targetLen, batch, E]);
      output = !batched ? output.squeeze(1) : this.batchFirst ? output.transpose(0, 1) : output;
      if (!needWeights) return { output };
      weights = weights.view([batch, heads, targetLen, sourceLen]);
      if (opts.averageAttnWeights ?? true) weights = weights.sum(1).div(heads);
      return { output, weights: batched ? weights : weights.squeeze(0) };
    });
  }
}
