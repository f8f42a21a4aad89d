// Trigger reverse-engineering in the model's input domain, after Neural Cleanse (Wang et al., S&P 2019):
// for every class c, a mask m and a pattern p over one clip's features (MFCC frames x coefficients, or
// EAT's raw samples) such that x' = (1 - m) * x + m * p sends clean clips of other classes to c, with the
// mask as small as possible: minimise CE(f(x'), c) + lambda * mean(m). A backdoor's target needs a far
// smaller mask than the other classes (the trigger is a shortcut), which the anomaly index of the smallest
// mask norm measures by the median absolute deviation over classes.
//
// Deliberate choices, for a cost of minutes per model on 2 cores:
// - few steps (default 150; NC runs thousands) of Adam (betas 0.5/0.9 as NC, lr 0.2 instead of 0.1 for
//   the short budget) on small batches (8 clips per class) of a clean subsample, clips of class c left out
//   for class c (they are already c: no signal);
// - m = sigmoid(a), starting at 0.1 everywhere (small, so that the mask grows where the class needs it
//   rather than shrinking from 0.5 within a short budget); p = lo + (hi - lo) * sigmoid(b) inside the
//   clean features' global range [lo, hi] (NC keeps the pattern in the valid pixel range; a global range,
//   not per coefficient, so a BadNets block at -200 in the high MFCCs stays reachable), starting mid-range;
// - the L1 term is the mask's mean (its share of the clip), so lambda means the same for 101x40 MFCCs and
//   16384 samples; lambda follows NC's schedule: 0 until the attack first succeeds on a batch, then the
//   initial cost, x1.5 after `patience` successful steps, /1.5^1.5 after `patience` failed ones;
// - a class's norm is the smallest mask mean among steps whose batch reached `successThreshold`
//   (NC: 0.99; 0.9 here, fewer steps); a class that never reached it keeps its last mask, flagged.
//
// `kwshield scan` (uncalibrated scores) stamps the input. The optimisation itself runs over a TriggerSite, so that
// the variants measured and not shipped (feature-space stamping, per-element or per-channel ranges and masks, a
// second model's term: research/scan/neural-cleanse-variants.ts) reuse this loop instead of copying it.

import type { FeatureSet } from '../data/feature-set.ts';
import { createRng } from '../data/rng.ts';
import type { KwsModel } from '../models/registry.ts';
import { adam } from '../nn/index.ts';
import { add, crossEntropy, grad, indexSelect, mul, sigmoid, sub, type Tensor, tensor, tidy } from '../torch/index.ts';

export interface NeuralCleanseOptions {
  /** optimisation steps (default 150) */
  steps?: number;
  /** clips per class and step (default 8) */
  batchSize?: number;
  /** Adam's learning rate on the mask and pattern logits (default 0.2) */
  lr?: number;
  /** share of a batch that must reach the class for a mask to count (default 0.9) */
  successThreshold?: number;
  /** lambda once the attack first succeeds (default 1: covering the whole clip costs as much as 1 nat) */
  initialCost?: number;
  patience?: number;
  /** the mask's starting value everywhere (default 0.1) */
  initialMask?: number;
  seed?: number;
  /** classes to reverse-engineer (default all) */
  labels?: number[];
  /** called after every step */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Where and how a reversed trigger is stamped: one clip's shape at the site, the mask's shape (broadcast over the
 * site), the pattern's range [lo, hi] (broadcast over the site; owned by the site), the model's logits with a stamp
 * applied there, and optionally a further loss term with a veto on hits (for the research variants).
 */
export interface TriggerSite {
  shape: number[];
  maskShape: number[];
  lo: Tensor;
  hi: Tensor;
  logits(x: Tensor, stamp: (v: Tensor) => Tensor): Tensor;
  extra?(x: Tensor, stamp: (v: Tensor) => Tensor, indices: readonly number[]): { loss: Tensor; keep: boolean[] };
}

/** The input site with one global pattern range (the clean features' minimum and maximum): what the scan uses. */
export function inputSite(model: KwsModel, clean: FeatureSet): TriggerSite {
  const [lo, hi] = tidy(() => [clean.features.min().reshape([1]), clean.features.max().reshape([1])]);
  const shape = clean.features.shape.slice(1);
  return { shape, maskShape: shape, lo, hi, logits: (x, stamp) => model.forward(stamp(x)) };
}

export interface ReversedTrigger {
  label: number;
  class: string;
  /** the mask's mean in [0, 1]: the share of the clip the trigger overwrites */
  maskL1: number;
  /** share of the batch sent to the class at the step the norm was taken */
  success: number;
  /** whether any step reached the success threshold */
  reached: boolean;
}

/** One class's lambda (NC's cost) schedule and the smallest successful trigger size so far. */
export interface CostState {
  cost: number;
  ups: number;
  downs: number;
  best: { size: number; success: number } | null;
  last: { size: number; success: number };
}

export const newCostState = (initialSize: number): CostState => ({ cost: 0, ups: 0, downs: 0, best: null, last: { size: initialSize, success: 0 } });

/**
 * Neural Cleanse's schedule after a step whose trigger had `size` and reached `success` of its batch: lambda
 * starts at initialCost when the attack first succeeds, x1.5 after `patience` successful steps, /1.5^1.5
 * after `patience` failed ones; a successful step's size is kept if it is the smallest.
 */
export function advanceCost(s: CostState, size: number, success: number, o: { threshold: number; initialCost: number; patience: number }): void {
  s.last = { size, success };
  if (success >= o.threshold) {
    if (!s.best || size < s.best.size) s.best = { size, success };
    if (s.cost === 0) s.cost = o.initialCost;
    else if (++s.ups >= o.patience) {
      s.cost *= 1.5;
      s.ups = 0;
    }
    s.downs = 0;
  } else if (s.cost > 0 && ++s.downs >= o.patience) {
    s.cost /= 1.5 ** 1.5;
    s.downs = 0;
    s.ups = 0;
  }
}

/** MAD-based anomaly index of each value below the median: (median - v) / (1.4826 * MAD); 0 above it. */
export function anomalyIndices(values: readonly number[]): { median: number; mad: number; indices: number[] } {
  const med = median(values);
  const mad = median(values.map((v) => Math.abs(v - med)));
  // NC's consistency constant makes MAD estimate the standard deviation of normal data.
  const scale = Math.max(1.4826 * mad, 1e-9 * Math.max(1, Math.abs(med)));
  return { median: med, mad, indices: values.map((v) => (v < med ? (med - v) / scale : 0)) };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** The reverse-engineered trigger of every class (or of opts.labels) over the clean clips, stamped on the input. */
export function reverseEngineerTriggers(model: KwsModel, clean: FeatureSet, opts: NeuralCleanseOptions = {}): ReversedTrigger[] {
  return reverseEngineerAt(model, clean, inputSite(model, clean), opts);
}

/**
 * The reverse-engineered trigger of every class at a site. All classes are optimised together, one forward of
 * classes x batchSize rows per step: Adam is elementwise and each class's loss touches only its own mask and
 * pattern, so this is exactly one optimisation per class. Disposes the site's range.
 */
export function reverseEngineerAt(model: KwsModel, clean: FeatureSet, site: TriggerSite, opts: NeuralCleanseOptions = {}): ReversedTrigger[] {
  const steps = opts.steps ?? 150;
  const batchSize = opts.batchSize ?? 8;
  const threshold = opts.successThreshold ?? 0.9;
  const initialCost = opts.initialCost ?? 1;
  const patience = opts.patience ?? 5;
  const labels = opts.labels ?? clean.classes.map((_, i) => i);
  const k = labels.length;
  const { shape, maskShape, lo, hi } = site;
  lo.persistent = true;
  hi.persistent = true;
  const area = maskShape.reduce((a, b) => a * b, 1);
  const span = tidy(() => sub(hi, lo));
  span.persistent = true;
  const pools = labels.map((label) => {
    const pool = clean.labelList.map((l, i) => (l === label ? -1 : i)).filter((i) => i >= 0);
    if (pool.length === 0) throw new Error(`Neural Cleanse: no clean clip outside class '${clean.classes[label]}'`);
    return createRng(`${opts.seed ?? 0}:nc:${label}`).shuffle(pool);
  });
  const b = Math.min(batchSize, ...pools.map((p) => p.length));
  const m0 = opts.initialMask ?? 0.1;
  const maskLogits = tensor(new Float32Array(k * area).fill(Math.log(m0 / (1 - m0))), [k, ...maskShape]);
  const patternLogits = tensor(new Float32Array(k * shape.reduce((a, c) => a * c, 1)), [k, ...shape]);
  for (const t of [maskLogits, patternLogits]) {
    t.requiresGrad = true;
    t.persistent = true;
  }
  const optimizer = adam([maskLogits, patternLogits], { lr: opts.lr ?? 0.2, betas: [0.5, 0.9] });
  const state = labels.map(() => newCostState(1));
  const target = tensor(BigInt64Array.from(labels.flatMap((label) => Array<bigint>(b).fill(BigInt(label)))));
  target.persistent = true;
  const wasTraining = model.training;
  model.eval();
  try {
    for (let step = 0; step < steps; step++) {
      const indices = pools.flatMap((pool) => Array.from({ length: b }, (_, j) => pool[(step * b + j) % pool.length]));
      const { maskL1, hits } = tidy(() => {
        const x = indexSelect(clean.features, 0, tensor(BigInt64Array.from(indices, BigInt)));
        const mask = sigmoid(maskLogits).unsqueeze(1);
        const pattern = add(mul(sigmoid(patternLogits), span), lo).unsqueeze(1);
        // x' = (1 - m) x + m p, each class's rows with its own mask and pattern
        const stamp = (v: Tensor) => add(mul(add(mask.neg(), 1), v.reshape([k, b, ...shape])), mul(mask, pattern)).reshape([k * b, ...shape]);
        const logits = site.logits(x, stamp);
        const maskMeans = sigmoid(maskLogits).reshape([k, area]).mean(1);
        const costs = tensor(Float32Array.from(state, (s) => s.cost));
        // Sum over classes of each class's batch-mean CE plus its own lambda * mask mean.
        let loss = add(crossEntropy(logits, target, { reduction: 'sum' }).div(b), mul(maskMeans, costs).sum());
        const hit = logits.argmax(1).eq(target).toArray() as (number | boolean)[];
        const extra = site.extra?.(x, stamp, indices);
        if (extra) {
          loss = add(loss, extra.loss);
          extra.keep.forEach((ok, i) => {
            if (!ok) hit[i] = false;
          });
        }
        const [ga, gb] = grad(loss, [maskLogits, patternLogits]) as Tensor[];
        maskLogits.grad = ga;
        patternLogits.grad = gb;
        const hits = Array.from({ length: k }, (_, c) => hit.slice(c * b, (c + 1) * b).filter(Boolean).length);
        return { maskL1: maskMeans.toArray(), hits };
      });
      optimizer.step();
      optimizer.zeroGrad();
      state.forEach((s, c) => advanceCost(s, maskL1[c], hits[c] / b, { threshold, initialCost, patience }));
      opts.onProgress?.(step + 1, steps);
    }
  } finally {
    optimizer.dispose();
    for (const t of [maskLogits, patternLogits, target, lo, hi, span]) t.dispose();
    model.train(wasTraining);
  }
  return labels.map((label, c) => {
    const s = state[c];
    const chosen = s.best ?? s.last;
    return { label, class: clean.classes[label], maskL1: chosen.size, success: chosen.success, reached: s.best !== null };
  });
}
