// The maximum achievable margin of each class, after MM-BD (Wang, Xiang, Miller, Kesidis; "MM-BD:
// Post-Training Detection of Backdoor Attacks with Arbitrary Backdoor Pattern Types Using a Maximum Margin
// Statistic", IEEE S&P 2024): for every class c, gradient ascent over inputs inside the clean features'
// range maximises logit_c(x) - max_{k != c} logit_k(x). A backdoor is a shortcut the network fires hard on,
// so its target class reaches a far larger margin than the others, whatever the trigger's form (a patch,
// a filter, a pitch shift), and no clean clip is stamped: the clean clips only give the input range.
//
// Choices here (the paper's numbers are for images): Adam (lr 0.1) on logits z of x = lo + (hi - lo) *
// sigmoid(z), 100 steps from `starts` random points per class (default 8), the class's statistic the
// largest final margin over its starts; the range per input element by default (a global range lets one
// out-of-range MFCC coefficient drive every class, the failure of the input-domain Neural Cleanse here).

import type { FeatureSet } from '../../src/data/feature-set.ts';
import { createRng } from '../../src/data/rng.ts';
import type { KwsModel } from '../../src/models/registry.ts';
import { adam } from '../../src/nn/index.ts';
import { add, grad, max, min, mul, sigmoid, sub, type Tensor, tensor, tidy } from '../../src/torch/index.ts';
import type { PatternRange } from './neural-cleanse-variants.ts';

export interface MaxMarginOptions {
  steps?: number;
  /** random starting points per class (default 8) */
  starts?: number;
  lr?: number;
  range?: Exclude<PatternRange, 'per-channel'>;
  seed?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface ClassMargin {
  label: number;
  class: string;
  /** the largest logit margin of the class reached from any start */
  margin: number;
}

export function maxMargins(model: KwsModel, clean: FeatureSet, opts: MaxMarginOptions = {}): ClassMargin[] {
  const steps = opts.steps ?? 100;
  const starts = opts.starts ?? 8;
  const k = clean.classes.length;
  const shape = clean.features.shape.slice(1);
  const area = shape.reduce((a, b) => a * b, 1);
  const rows = k * starts;
  const [lo, span] = tidy(() => {
    if ((opts.range ?? 'per-element') === 'global') {
      const l = clean.features.min().reshape([1]);
      return [l, sub(clean.features.max().reshape([1]), l)];
    }
    const l = min(clean.features, 0);
    return [l.contiguous(), sub(max(clean.features, 0), l).contiguous()];
  });
  const rng = createRng(`${opts.seed ?? 0}:mmbd`);
  const z = tensor(
    Float32Array.from({ length: rows * area }, () => rng.normal()),
    [rows, ...shape],
  );
  // one-hot of each row's class, and a large negative there so that max() over the rest skips it
  const hot = new Float32Array(rows * k);
  for (let r = 0; r < rows; r++) hot[r * k + Math.floor(r / starts)] = 1;
  const onehot = tensor(hot, [rows, k]);
  for (const t of [lo, span, z, onehot]) t.persistent = true;
  z.requiresGrad = true;
  const optimizer = adam([z], { lr: opts.lr ?? 0.1 });
  const wasTraining = model.training;
  model.eval();
  let margins: number[] = [];
  try {
    for (let step = 0; step < steps; step++) {
      margins = tidy(() => {
        const logits = model.forward(add(mul(sigmoid(z), span), lo));
        const own = mul(logits, onehot).sum(1);
        const rest = max(sub(logits, mul(onehot, 1e6)), 1);
        const margin = sub(own, rest);
        const [g] = grad(margin.sum().neg(), [z]) as Tensor[];
        z.grad = g;
        return margin.toArray();
      });
      optimizer.step();
      optimizer.zeroGrad();
      opts.onProgress?.(step + 1, steps);
    }
  } finally {
    optimizer.dispose();
    for (const t of [lo, span, z, onehot]) t.dispose();
    model.train(wasTraining);
  }
  return clean.classes.map((name, c) => ({ label: c, class: name, margin: Math.max(...margins.slice(c * starts, (c + 1) * starts)) }));
}
