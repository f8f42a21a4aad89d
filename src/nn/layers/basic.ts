import { dropout, flatten, relu, type Tensor } from '../../torch/index.ts';
import { chain } from '../chain.ts';
import { type Layer, type LayerModule, Module } from '../module.ts';

/** Inverted dropout, active only in training mode. */
export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (!(p >= 0 && p < 1)) throw new RangeError(`Dropout probability must be in [0, 1), got ${p}`);
  }

  forward(x: Tensor): Tensor {
    return this.training && this.p > 0 ? dropout(x, this.p, true) : x;
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class Flatten extends Module {
  constructor(readonly startDim = 1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return flatten(x, this.startDim);
  }
}

/** Applies layers in order; children are named 0, 1, 2... as in torch.nn.Sequential. */
export class Sequential extends Module implements Layer {
  readonly layers: LayerModule[];

  constructor(...layers: LayerModule[]) {
    super();
    this.layers = layers;
  }

  // Sequential's children are named by index alone (no 'layers.' prefix), matching PyTorch.
  override namedChildren(): [string, Module][] {
    return this.layers.map((m, i) => [String(i), m]);
  }

  forward(x: Tensor): Tensor {
    return chain(x, ...this.layers.map((layer) => (t: Tensor) => layer.forward(t)));
  }
}
