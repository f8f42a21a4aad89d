import { linear, type Tensor } from '../../torch/index.ts';
import { defaultBias, defaultWeight } from '../init.ts';
import { Module } from '../module.ts';

/** y = x W^T + b, initialised as torch.nn.Linear. */
export class Linear extends Module {
  weight: Tensor;
  bias: Tensor | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { bias?: boolean } = {},
  ) {
    super();
    this.weight = defaultWeight([outFeatures, inFeatures]);
    this.bias = opts.bias === false ? null : defaultBias(outFeatures, [outFeatures, inFeatures]);
  }

  forward(x: Tensor): Tensor {
    const last = x.shape[x.ndim - 1];
    if (last !== this.inFeatures)
      throw new Error(`Linear(${this.inFeatures} -> ${this.outFeatures}) got input of shape [${x.shape.join(', ')}]: the last dim must be ${this.inFeatures}`);
    return linear(x, this.weight, this.bias);
  }
}
