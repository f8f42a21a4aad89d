import { lstm, type Tensor, tidy, zeros } from '../../torch/index.ts';
import { uniformParameter } from '../init.ts';
import { Module } from '../module.ts';

export interface LSTMOptions {
  /** stacked layers (default 1) */
  numLayers?: number;
  /** learn bias_ih/bias_hh (default true) */
  bias?: boolean;
  /** input and output as [batch, time, features] instead of [time, batch, features] (default false) */
  batchFirst?: boolean;
  /** dropout on the outputs of every layer but the last, in training mode (default 0) */
  dropout?: number;
  /** a second, time-reversed direction per layer; outputs concatenate both (default false) */
  bidirectional?: boolean;
}

/** Initial or final hidden and cell states, each [layers * directions, batch, hidden] ([layers * directions, hidden] unbatched). */
export interface LSTMState {
  h: Tensor;
  c: Tensor;
}

/**
 * A multi-layer LSTM over the fused aten::lstm op, as torch.nn.LSTM: the same gate order (i, f, g, o),
 * parameter names (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, then `_reverse` for the second
 * direction, then layer 1...), shapes and initialisation. The parameters are fields of the module
 * itself, so an `lstm` field of a model has state dict names `lstm.weight_ih_l0` and so on.
 *
 * ```ts
 * const rnn = new LSTM(40, 64, { numLayers: 2, batchFirst: true });
 * const out = rnn.forward(randn([8, 100, 40]));          // [8, 100, 64]
 * const { output, h, c } = rnn.run(randn([8, 100, 40])); // h, c: [2, 8, 64]
 * ```
 */
export class LSTM extends Module {
  readonly numLayers: number;
  readonly bias: boolean;
  readonly batchFirst: boolean;
  readonly dropout: number;
  readonly bidirectional: boolean;
  /** The parameter field names in aten::lstm's flat order: per layer, per direction, w_ih, w_hh[, b_ih, b_hh]. */
  readonly flatWeightNames: readonly string[];

  constructor(
    readonly inputSize: number,
    readonly hiddenSize: number,
    opts: LSTMOptions = {},
  ) {
    super();
    this.numLayers = opts.numLayers ?? 1;
    this.bias = opts.bias ?? true;
    this.batchFirst = opts.batchFirst ?? false;
    this.dropout = opts.dropout ?? 0;
    this.bidirectional = opts.bidirectional ?? false;
    if (!Number.isInteger(inputSize) || inputSize < 1 || !Number.isInteger(hiddenSize) || hiddenSize < 1) {
      throw new RangeError(`LSTM sizes must be positive integers, got inputSize=${inputSize}, hiddenSize=${hiddenSize}`);
    }
    if (!Number.isInteger(this.numLayers) || this.numLayers < 1) throw new RangeError(`LSTM numLayers must be a positive integer, got ${this.numLayers}`);
    if (!(this.dropout >= 0 && this.dropout <= 1)) throw new RangeError(`LSTM dropout must be in [0, 1], got ${this.dropout}`);

    // torch.nn.RNNBase.reset_parameters: every weight and bias uniform in +-1/sqrt(hidden_size).
    const bound = 1 / Math.sqrt(hiddenSize);
    const directions = this.bidirectional ? 2 : 1;
    const fields = this as unknown as Record<string, Tensor>;
    const names: string[] = [];
    for (let layer = 0; layer < this.numLayers; layer++) {
      const layerInput = layer === 0 ? inputSize : hiddenSize * directions;
      for (let direction = 0; direction < directions; direction++) {
        const suffix = `_l${layer}${direction === 1 ? '_reverse' : ''}`;
        const shapes: [string, number[]][] = [
          [`weight_ih${suffix}`, [4 * hiddenSize, layerInput]],
          [`weight_hh${suffix}`, [4 * hiddenSize, hiddenSize]],
          ...(this.bias
            ? ([
                [`bias_ih${suffix}`, [4 * hiddenSize]],
                [`bias_hh${suffix}`, [4 * hiddenSize]],
              ] as [string, number[]][])
            : []),
        ];
        for (const [name, shape] of shapes) {
          fields[name] = uniformParameter(shape, bound);
          names.push(name);
        }
      }
    }
    this.flatWeightNames = names;
  }

  /** The parameters in aten::lstm's order (read from the fields each time: `to()` may replace them). */
  flatWeights(): Tensor[] {
    const fields = this as unknown as Record<string, Tensor>;
    return this.flatWeightNames.map((name) => fields[name]);
  }

  /** The output sequence: [time, batch, hidden * directions] ([batch, time, ...] with batchFirst; [time, ...] unbatched). */
  forward(x: Tensor): Tensor {
    return tidy(() => this.run(x).output);
  }

  /** Output sequence and final states; `state` defaults to zeros. */
  run(x: Tensor, state?: LSTMState): { output: Tensor; h: Tensor; c: Tensor } {
    if ((x.ndim !== 2 && x.ndim !== 3) || x.shape[x.ndim - 1] !== this.inputSize) {
      throw new Error(
        `LSTM(${this.inputSize}, ${this.hiddenSize}) expects input [time, batch, ${this.inputSize}]${this.batchFirst ? ' (batchFirst: [batch, time, ...])' : ''} or unbatched [time, ${this.inputSize}], got [${x.shape.join(', ')}]`,
      );
    }
    return tidy(() => {
      const batched = x.ndim === 3;
      const input = batched ? x : x.unsqueeze(this.batchFirst ? 0 : 1);
      const batch = input.shape[this.batchFirst ? 0 : 1];
      const stateShape = [this.numLayers * (this.bidirectional ? 2 : 1), batch, this.hiddenSize];
      let hx: [Tensor, Tensor];
      if (state) {
        const expected = batched ? stateShape : [stateShape[0], this.hiddenSize];
        for (const [name, t] of [
          ['h', state.h],
          ['c', state.c],
        ] as const) {
          if (t.shape.join(',') !== expected.join(','))
            throw new Error(`LSTM initial state ${name} must be [${expected.join(', ')}], got [${t.shape.join(', ')}]`);
        }
        hx = batched ? [state.h, state.c] : [state.h.unsqueeze(1), state.c.unsqueeze(1)];
      } else {
        const opts = { dtype: x.dtype, device: x.device };
        hx = [zeros(stateShape, opts), zeros(stateShape, opts)];
      }
      const out = lstm(input, {
        hx,
        params: this.flatWeights(),
        hasBiases: this.bias,
        numLayers: this.numLayers,
        dropout: this.dropout,
        training: this.training,
        bidirectional: this.bidirectional,
        batchFirst: this.batchFirst,
      });
      if (batched) return out;
      return { output: out.output.squeeze(this.batchFirst ? 0 : 1), h: out.h.squeeze(1), c: out.c.squeeze(1) };
    });
  }
}
