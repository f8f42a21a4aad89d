import { conv1d, conv2d, type Tensor } from '../../torch/index.ts';
import { defaultBias, defaultWeight } from '../init.ts';
import { Module } from '../module.ts';

type Pair = number | [number, number];
const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : v);

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}

function checkChannels(name: string, x: Tensor, dims: number, inChannels: number): void {
  if (x.ndim !== dims || x.shape[1] !== inChannels) {
    throw new Error(`${name} expects input [batch, ${inChannels}, ...] with ${dims} dims, got [${x.shape.join(', ')}]`);
  }
}

/** 2-D convolution, initialised as torch.nn.Conv2d. Weight [out, in/groups, kh, kw]. */
export class Conv2d extends Module {
  weight: Tensor;
  bias: Tensor | null;
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernel: Pair,
    opts: Conv2dOptions = {},
  ) {
    super();
    this.groups = opts.groups ?? 1;
    const shape = [outChannels, inChannels / this.groups, ...pair(kernel)];
    this.weight = defaultWeight(shape);
    this.bias = opts.bias === false ? null : defaultBias(outChannels, shape);
    this.stride = pair(opts.stride ?? 1);
    this.padding = pair(opts.padding ?? 0);
    this.dilation = pair(opts.dilation ?? 1);
  }

  forward(x: Tensor): Tensor {
    checkChannels('Conv2d', x, 4, this.inChannels);
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups });
  }
}

export interface Conv1dOptions {
  stride?: number;
  padding?: number;
  dilation?: number;
  groups?: number;
  bias?: boolean;
}

/** 1-D convolution, initialised as torch.nn.Conv1d. Weight [out, in/groups, k]. */
export class Conv1d extends Module {
  weight: Tensor;
  bias: Tensor | null;
  readonly opts: Required<Omit<Conv1dOptions, 'bias'>>;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernel: number,
    opts: Conv1dOptions = {},
  ) {
    super();
    this.opts = { stride: opts.stride ?? 1, padding: opts.padding ?? 0, dilation: opts.dilation ?? 1, groups: opts.groups ?? 1 };
    const shape = [outChannels, inChannels / this.opts.groups, kernel];
    this.weight = defaultWeight(shape);
    this.bias = opts.bias === false ? null : defaultBias(outChannels, shape);
  }

  forward(x: Tensor): Tensor {
    checkChannels('Conv1d', x, 3, this.inChannels);
    return conv1d(x, this.weight, this.bias, this.opts);
  }
}
