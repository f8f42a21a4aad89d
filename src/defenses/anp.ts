// ANP: adversarial neuron pruning (Wu & Wang, NeurIPS'21; specs/defenses.md section 6; [BB] defense/anp.py,
// utils/defense_utils/anp/anp_model/anp_batchnorm.py). Every BatchNorm channel gets a mask m in [0, 1]
// (init 1) and, when perturbed, noises delta on its scale and xi on its shift: y = BN(x; gamma (m + delta),
// beta (1 + xi)). Per batch: delta, xi ~ U(-eps, eps), one signed ascent step of size eps on the
// cross-entropy (clipped to [-eps, eps]); then m descends alpha CE(clean) + (1 - alpha) CE(perturbed) by SGD
// and is clamped to [0, 1]. Afterwards channels with m <= t get gamma = 0.
//
// Deliberate choices:
// - The threshold t is chosen on the clean hold-out only ([BB] keeps the lowest-ASR model on the test set,
//   which a defender cannot see): t runs over {0, step, ..., max} upward and the largest t kept is the one
//   before the first whose pruned model's hold-out accuracy falls below (1 - maxDrop) of the unpruned
//   model's (maxDrop 0.1, [BB]'s 10% relative drop). Pruning more channels is the defender's proxy for a
//   lower ASR; stopping at the first failure (as Fine-Pruning does) keeps a noisy later threshold from being
//   picked. If already t = 0 fails, nothing is pruned.
// - BatchNorm uses batch statistics while the masks train, as the release's model.train(), but its running
//   statistics are not updated: [BB] prunes a fresh copy of the backdoored model, so the statistics the
//   mask-training passes overwrite never reach the result. Here the model itself is pruned and stays
//   otherwise bit-identical.
// - Models without BatchNorm: the masks and noises go on LayerNorm scales and shifts (KWT), the same rule
//   NFT uses (nft.ts maskableNorms); a LayerNorm feature of a post-norm transformer is its residual stream's
//   channel, as a BatchNorm channel is a conv's. Models with neither (the LSTM) are refused.
// - Iterations: [BB] draws 2000 batches of 256 with replacement from 2,500 CIFAR images (~205 draws per
//   image). The default recipe draws 1000 batches of 128 (~170 draws per clip from the ~740 fit clips of a
//   5% SCD-10 clean set) at a quarter of the compute: each iteration costs three forward and two backward passes.

import { type FeatureSet, gatherBatch } from '../data/feature-set.ts';
import { createRng, deriveSeed } from '../data/rng.ts';
import { accuracyAndLoss } from '../models/predict.ts';
import type { KwsModel } from '../models/registry.ts';
import { parameter, sgd, withFrozenBatchNormStats } from '../nn/index.ts';
import {
  add,
  addInPlace,
  clampInPlace,
  clone,
  copyInPlace,
  crossEntropy,
  dispose,
  grad,
  keep,
  manualSeed,
  mul,
  mulInPlace,
  neg,
  noGrad,
  ones,
  sign,
  type Tensor,
  tensor,
  tidy,
  uniformInPlace,
  zeros,
} from '../torch/index.ts';
import { begin, fineTuneOptionSpecs, finish } from './fine-tune-frame.ts';
import { freezeParameters, maskableNorms, type NormLayer, normLayerProblem, withNormReparam } from './nft.ts';
import { registerDefense } from './registry.ts';
import { type DefenseProgress, type DefenseSpec, defineDefense } from './types.ts';

export interface AnpSettings {
  /** noise bound ([BB] anp_eps: 0.4) */
  eps: number;
  /** signed ascent steps on the noise ([BB] anp_steps: 1) */
  steps: number;
  /** weight of the clean loss ([BB] anp_alpha: 0.2) */
  alpha: number;
  iterations: number;
  batchSize: number;
  lr: number;
  momentum: number;
}

/**
 * Trains ANP's masks on `fit` (batches drawn with replacement, seeded) and returns their values per layer.
 * The model's own tensors are not changed.
 */
export async function trainAnpMasks(
  model: KwsModel,
  norms: readonly NormLayer[],
  fit: FeatureSet,
  o: AnpSettings,
  seed: number,
  progress?: DefenseProgress,
): Promise<{ masks: number[][]; losses: number[] }> {
  const rng = createRng(deriveSeed(seed, 'anp', 'batches'));
  manualSeed(deriveSeed(seed, 'anp', 'noise') % 2 ** 31);
  const masks = norms.map((n) => parameter(ones([n.channels], { dtype: n.module.weight.dtype })));
  const noises = norms.flatMap((n) => [0, 1].map(() => parameter(zeros([n.channels], { dtype: n.module.weight.dtype }))));
  const scaleNoise = (i: number) => noises[2 * i];
  const shiftNoise = (i: number) => noises[2 * i + 1];
  const optimizer = sgd(masks, { lr: o.lr, momentum: o.momentum });
  let perturbed = false;
  const unfreeze = freezeParameters(model);
  const losses: number[] = [];
  try {
    await withNormReparam(
      norms,
      (i) =>
        perturbed
          ? { weight: mul(norms[i].module.weight, add(masks[i], scaleNoise(i))), bias: mul(norms[i].module.bias, add(shiftNoise(i), 1)) }
          : { weight: mul(norms[i].module.weight, masks[i]) },
      async () => {
        for (let it = 0; it < o.iterations; it++) {
          const indices = Array.from({ length: o.batchSize }, () => rng.int(fit.size));
          model.train();
          const loss = withFrozenBatchNormStats(model, () =>
            tidy(() => {
              const { x, y } = gatherBatch(fit, indices);
              let robust: Tensor | null = null;
              if (o.eps > 0) {
                noGrad(() => {
                  for (const t of noises) uniformInPlace(t, -o.eps, o.eps);
                });
                for (let s = 0; s < o.steps; s++) {
                  perturbed = true;
                  const g = grad(neg(crossEntropy(model.forward(x), y)), noises) as Tensor[];
                  // signed descent on -CE with step eps / steps, then clipped ([BB] sign_grad, clip_noise)
                  noGrad(() =>
                    noises.forEach((t, k) => {
                      addInPlace(t, sign(g[k]), -o.eps / o.steps);
                      clampInPlace(t, -o.eps, o.eps);
                    }),
                  );
                }
                perturbed = true;
                robust = crossEntropy(model.forward(x), y);
              }
              perturbed = false;
              const natural = crossEntropy(model.forward(x), y);
              // [BB]: alpha * CE(clean) + (1 - alpha) * CE(perturbed), the second term 0 when eps = 0
              const total = robust ? add(mul(natural, o.alpha), mul(robust, 1 - o.alpha)) : mul(natural, o.alpha);
              const g = grad(total, masks) as Tensor[];
              masks.forEach((m, k) => {
                m.grad = g[k];
              });
              return total.item();
            }),
          );
          optimizer.step();
          noGrad(() => {
            for (const m of masks) clampInPlace(m, 0, 1);
          });
          if (!Number.isFinite(loss)) throw new Error(`anp: the loss became ${loss} at iteration ${it + 1}; lower the learning rate`);
          losses.push(loss);
          progress?.step?.('anp', it + 1, o.iterations, `loss ${loss.toFixed(3)}`);
          if (it % 4 === 3) await new Promise((resolve) => setImmediate(resolve));
        }
      },
    );
    return { masks: masks.map((m) => m.toArray()), losses };
  } finally {
    model.eval();
    unfreeze();
    optimizer.dispose();
    dispose(masks, noises);
  }
}

/** Sets gamma = 0 for every channel whose mask is <= threshold; returns the pruned channels per layer. */
export function pruneByMask(norms: readonly NormLayer[], masks: readonly number[][], threshold: number): number[][] {
  return norms.map((n, l) => {
    const pruned = masks[l].flatMap((m, c) => (m <= threshold ? [c] : []));
    if (pruned.length) {
      const keepMask = new Float32Array(n.channels).fill(1);
      for (const c of pruned) keepMask[c] = 0;
      noGrad(() => tidy(() => mulInPlace(n.module.weight, tensor(keepMask, n.module.weight.shape).to(n.module.weight.dtype))));
    }
    return pruned;
  });
}

/** The threshold grid {0, step, 2 step, ..., <= max}, rounded so that 0.15 is 0.15. */
export function thresholdGrid(step: number, max: number): number[] {
  const out: number[] = [];
  for (let k = 0; k * step <= max + 1e-9; k++) out.push(Math.round(k * step * 1e9) / 1e9);
  return out;
}

export interface ThresholdTrial {
  threshold: number;
  pruned: number;
  holdoutAccuracy: number;
}

/**
 * The threshold rule: t rises through `grid`, each trial measured by `evaluate` (pruned channels and clean
 * hold-out accuracy); the threshold kept is the last one before the first trial whose accuracy is below
 * `floor`, or null when already the first is. Trials stop at that failure.
 */
export function chooseThreshold(
  grid: readonly number[],
  evaluate: (t: number) => { pruned: number; holdoutAccuracy: number },
  floor: number,
): { threshold: number | null; trail: ThresholdTrial[] } {
  const trail: ThresholdTrial[] = [];
  let threshold: number | null = null;
  for (const t of grid) {
    const r = evaluate(t);
    trail.push({ threshold: t, pruned: r.pruned, holdoutAccuracy: r.holdoutAccuracy });
    if (r.holdoutAccuracy < floor) break;
    threshold = t;
  }
  return { threshold, trail };
}

export const anpOptions = {
  eps: { type: 'number', default: 0.4, min: 0, help: 'bound of the noise on the BatchNorm scale and shift ([BB] anp_eps: 0.4)' },
  steps: { type: 'integer', default: 1, min: 1, help: 'signed ascent steps on the noise per batch ([BB] anp_steps: 1)' },
  alpha: { type: 'number', default: 0.2, min: 0, max: 1, help: 'weight of the clean loss against the perturbed one ([BB] anp_alpha: 0.2)' },
  iterations: { type: 'integer', default: 1000, min: 1, help: 'mask updates, each on a batch drawn with replacement ([BB] nb_iter: 2000)' },
  batchSize: { type: 'integer', default: 128, min: 1, help: 'batch size ([BB]: 256)' },
  lr: { type: 'number', default: 0.01, above: 0, help: 'SGD learning rate of the masks ([BB]: 0.01)' },
  momentum: { type: 'number', default: 0.9, min: 0, max: 0.999, help: 'SGD momentum of the masks ([BB]: 0.9)' },
  maxDrop: {
    type: 'number',
    default: 0.1,
    above: 0,
    max: 1,
    help: 'the pruning threshold stops rising before the hold-out accuracy falls by this share ([BB]: 10% relative CA drop)',
  },
  thresholdStep: { type: 'number', default: 0.05, above: 0, max: 1, help: 'step of the mask threshold grid ([BB]: 0.05)' },
  thresholdMax: { type: 'number', default: 0.9, min: 0, max: 1, help: 'largest mask threshold tried ([BB]: 0.9)' },
  holdout: fineTuneOptionSpecs.holdout,
} as const;

export const anp: DefenseSpec<typeof anpOptions> = defineDefense({
  name: 'anp',
  description:
    'ANP: BatchNorm channel masks trained against adversarial neuron noise, low masks pruned at a threshold chosen on the clean hold-out (Wu & Wang)',
  minCleanClips: 10,
  needsData: true,
  options: anpOptions,
  recipes: {
    // [BB] anp.py; the threshold chosen on our hold-out (BB used the test set).
    paper: { iterations: 2000, batchSize: 256, holdout: 0.2 },
    // The project's: half the updates on batches of 128 (see the file comment).
    default: { iterations: 1000, batchSize: 128, holdout: 0.2 },
  },
  modelProblem: (model, info) => normLayerProblem('anp', model, info),
  async purify(model, clean, ctx) {
    const p = begin(anp, model, clean, ctx);
    const originals: Tensor[] = [];
    try {
      if (!p.holdout) throw new Error('anp chooses its pruning threshold on a clean hold-out; set -o holdout above 0');
      const holdout = p.holdout;
      const o = p.options;
      const norms = maskableNorms(model);
      ctx.progress?.stage?.(`training masks on ${norms.length} ${norms[0].kind} layers against noise of +-${o.eps}`);
      const { masks, losses } = await trainAnpMasks(
        model,
        norms,
        p.fit,
        {
          eps: o.eps,
          steps: o.steps,
          alpha: o.alpha,
          iterations: o.iterations,
          batchSize: o.batchSize,
          lr: o.lr,
          momentum: o.momentum,
        },
        ctx.seed,
        ctx.progress,
      );
      for (const n of norms) originals.push(noGrad(() => keep(clone(n.module.weight))));
      const restore = () => noGrad(() => norms.forEach((n, l) => copyInPlace(n.module.weight, originals[l])));
      const start = accuracyAndLoss(model, holdout).accuracy;
      const floor = (1 - o.maxDrop) * start;
      const grid = thresholdGrid(o.thresholdStep, o.thresholdMax);
      let last: { pruned: number; holdoutAccuracy: number } | null = null;
      const { threshold: chosen, trail } = chooseThreshold(
        grid,
        (t) => {
          restore();
          const pruned = pruneByMask(norms, masks, t).reduce((n, c) => n + c.length, 0);
          // the same channels as the threshold before: the same model
          const holdoutAccuracy = last && last.pruned === pruned ? last.holdoutAccuracy : accuracyAndLoss(model, holdout).accuracy;
          last = { pruned, holdoutAccuracy };
          ctx.progress?.step?.('pruning', grid.indexOf(t) + 1, grid.length, `t ${t}: ${pruned} channels, hold-out ${(100 * holdoutAccuracy).toFixed(1)}%`);
          return last;
        },
        floor,
      );
      restore();
      const pruned = chosen === null ? norms.map(() => []) : pruneByMask(norms, masks, chosen);
      return finish(anp, model, clean, p, [], {
        threshold: chosen,
        holdoutBeforePruning: start,
        prunedChannels: pruned.reduce((n, c) => n + c.length, 0),
        pruned: Object.fromEntries(norms.map((n, l) => [n.name, pruned[l]])),
        trail,
        masks: Object.fromEntries(norms.map((n, l) => [n.name, masks[l]])),
        finalLoss: losses[losses.length - 1],
        ...(chosen === null ? { note: 'pruning even the channels with mask 0 cost more than maxDrop of the hold-out accuracy: nothing pruned' } : {}),
      });
    } finally {
      dispose(originals);
      p.dispose();
    }
  },
});

registerDefense(anp);
