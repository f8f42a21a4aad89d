// Toy data and models for the analysis tests: 8x8 "MFCC" clips, a noisy +-1 template per class,
// a residual conv net (so the batched loss changes must climb to an enclosing module), and a short Adam
// training with an optional BadNets-like patch (bottom-right 2x2 block set to a constant, relabelled).
import { batchIndices, type FeatureSet, gatherBatch, makeFeatureSet } from '../../src/data/feature-set.ts';
import { createRng } from '../../src/data/rng.ts';
import type { KwsModel } from '../../src/models/registry.ts';
import { adam, BatchNorm2d, Conv2d, Linear, Module } from '../../src/nn/index.ts';
import { adaptiveAvgPool2d, add, backward, crossEntropy, manualSeed, relu, type Tensor, tensor, tidy } from '../../src/torch/index.ts';

export const toyClasses = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
const defaultClasses = 4;

export interface Patch {
  value: number;
  /** side of the square block in the bottom-right corner */
  size: number;
}

/** Each class's fixed +-1 template over a side x side clip (seeded, the same in every call). */
function templates(side: number): Float32Array[] {
  const rng = createRng(`toy-templates-${side}`);
  return toyClasses.map(() => Float32Array.from({ length: side * side }, () => (rng.next() < 0.5 ? -1 : 1)));
}

export interface ToyOptions {
  classes?: number;
  /** clips are side x side (default 8) */
  side?: number;
  /** the templates' amplitude (default 1; noise std 0.7) */
  amplitude?: number;
  /** values are clamped to [-limit, limit] (default: not clamped) */
  limit?: number;
  patch?: Patch;
}

/**
 * n clips of 8x8, class = i % classes: the class's +-1 template plus noise, so a clip can only be
 * turned into another class by changing much of it; `patch` overwrites the bottom-right block.
 */
export function toyFeatures(n: number, seed: number, opts: ToyOptions = {}): { data: Float32Array; labels: number[] } {
  const classes = opts.classes ?? defaultClasses;
  const side = opts.side ?? 8;
  const area = side * side;
  const template = templates(side);
  const rng = createRng(seed);
  const labels = Array.from({ length: n }, (_, i) => i % classes);
  const data = new Float32Array(n * area);
  labels.forEach((label, i) => {
    for (let j = 0; j < area; j++) {
      const [r, c] = [Math.floor(j / side), j % side];
      const v = (opts.amplitude ?? 1) * template[label][j] + rng.normal() * 0.7;
      data[i * area + j] = opts.limit === undefined ? v : Math.max(-opts.limit, Math.min(opts.limit, v));
      if (opts.patch && r >= side - opts.patch.size && c >= side - opts.patch.size) data[i * area + j] = opts.patch.value;
    }
  });
  return { data, labels };
}

export function toySet(n: number, seed: number, opts: ToyOptions = {}): FeatureSet {
  const { data, labels } = toyFeatures(n, seed, opts);
  const side = opts.side ?? 8;
  return makeFeatureSet(tensor(data, [n, side, side]), labels, toyClasses.slice(0, opts.classes ?? defaultClasses));
}

class ToyBlock extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  conv2: Conv2d;
  constructor(channels: number) {
    super();
    this.conv1 = new Conv2d(channels, channels, 3, { padding: 1, bias: false });
    this.bn1 = new BatchNorm2d(channels);
    this.conv2 = new Conv2d(channels, channels, 3, { padding: 1 });
  }
  forward(x: Tensor): Tensor {
    return tidy(() => relu(add(this.conv2.forward(relu(this.bn1.forward(this.conv1.forward(x)))), x)));
  }
}

/** stem conv -> BN -> residual block -> 1x1 conv -> avg pool to 4x4 -> hidden Linear -> classifier. */
export class ToyNet extends Module {
  stem = new Conv2d(1, 6, 3, { padding: 1 });
  bn = new BatchNorm2d(6);
  block = new ToyBlock(6);
  head = new Conv2d(6, 8, 1);
  hidden = new Linear(8 * 4 * 4, 12);
  fc: Linear;
  constructor(classes: number) {
    super();
    this.fc = new Linear(12, classes);
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const h = this.block.forward(relu(this.bn.forward(this.stem.forward(x.unsqueeze(1)))));
      const pooled = adaptiveAvgPool2d(relu(this.head.forward(h)), [4, 4]).flatten(1);
      return this.fc.forward(relu(this.hidden.forward(pooled)));
    });
  }
  neuronLayers(): string[] {
    return ['stem', 'block.conv1', 'block.conv2', 'head', 'hidden'];
  }
}

export function toyNet(seed = 0, classes = defaultClasses): KwsModel & ToyNet {
  manualSeed(seed);
  return new ToyNet(classes) as KwsModel & ToyNet;
}

/**
 * A ToyNet trained with Adam on `n` toy clips; with `poison`, a share of them (not of the target class)
 * carry the patch and the target label. Returns the model in eval mode.
 */
export function trainToy(o: {
  seed?: number;
  n?: number;
  steps?: number;
  classes?: number;
  side?: number;
  amplitude?: number;
  limit?: number;
  poison?: { patch: Patch; target: number; ratio: number };
}): KwsModel & ToyNet {
  const seed = o.seed ?? 0;
  const n = o.n ?? 400;
  const classes = o.classes ?? defaultClasses;
  const side = o.side ?? 8;
  const area = side * side;
  const clean = toyFeatures(n, seed + 100, { classes, side, amplitude: o.amplitude, limit: o.limit });
  if (o.poison) {
    const { patch, target, ratio } = o.poison;
    const triggered = toyFeatures(n, seed + 100, { classes, side, amplitude: o.amplitude, limit: o.limit, patch });
    const rng = createRng(seed + 7);
    for (let i = 0; i < n; i++) {
      if (clean.labels[i] === target || rng.next() >= ratio / (1 - 1 / classes)) continue;
      clean.data.set(triggered.data.subarray(i * area, (i + 1) * area), i * area);
      clean.labels[i] = target;
    }
  }
  const set = makeFeatureSet(tensor(clean.data, [n, side, side]), clean.labels, toyClasses.slice(0, classes));
  const model = toyNet(seed, classes);
  const optimizer = adam(model.parameters(), { lr: 0.01 });
  const steps = o.steps ?? 300;
  let step = 0;
  while (step < steps) {
    for (const indices of batchIndices(n, 32, { shuffle: true, seed: seed + step })) {
      if (step++ >= steps) break;
      tidy(() => {
        const { x, y } = gatherBatch(set, indices);
        optimizer.zeroGrad();
        backward(crossEntropy(model.forward(x), y));
        optimizer.step();
      });
    }
  }
  optimizer.dispose();
  set.features.dispose();
  set.labels.dispose();
  return model.eval();
}
