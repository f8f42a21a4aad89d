// Trigger reverse-engineering with an audio prior: the smallest time-invariant shift of the features that
// sends clean clips of other classes to class c. In log-mel and MFCC features a linear time-invariant filter
// (an equaliser, a room, a microphone) is exactly an additive offset per band or coefficient, the same in every
// frame, and a steady added sound (a tone, a hum) is nearly one; so most audio triggers (JingleBack's filters,
// VSVC's timbre, an ultrasonic carrier, a constant noise) live in this 1 x coefficients family, where an
// input-wide mask of thousands of free elements (input-domain Neural Cleanse) also finds adversarial
// shortcuts to every class. A backdoor's target should need a far smaller shift than the other classes.
//
// For class c, x' = x + sigma * u_c with u_c one value per coefficient (broadcast over frames) and sigma the
// clean features' spread per coefficient; minimise CE(f(x'), c) + lambda * mean(u_c^2) with Neural Cleanse's
// lambda schedule (neural-cleanse.ts), all classes in one batched forward. A class's norm is rms(u_c) at the
// smallest successful step (success: `successThreshold` of the batch reaches c).

import { advanceCost, newCostState } from '../../src/analysis/neural-cleanse.ts';
import type { FeatureSet } from '../../src/data/feature-set.ts';
import { createRng } from '../../src/data/rng.ts';
import type { KwsModel } from '../../src/models/registry.ts';
import { adam } from '../../src/nn/index.ts';
import { add, crossEntropy, grad, indexSelect, mul, std, type Tensor, tensor, tidy } from '../../src/torch/index.ts';

export interface SpectralShiftOptions {
  steps?: number;
  batchSize?: number;
  lr?: number;
  successThreshold?: number;
  initialCost?: number;
  patience?: number;
  seed?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface ReversedShift {
  label: number;
  class: string;
  /** root mean square of the shift, in clean standard deviations per coefficient */
  rms: number;
  success: number;
  reached: boolean;
}

export function reverseEngineerShifts(model: KwsModel, clean: FeatureSet, opts: SpectralShiftOptions = {}): ReversedShift[] {
  const shape = clean.features.shape.slice(1);
  if (shape.length !== 2) throw new Error(`spectral shift: needs frames x coefficients features, got a clip shape of [${shape.join(', ')}]`);
  const steps = opts.steps ?? 150;
  const threshold = opts.successThreshold ?? 0.9;
  const initialCost = opts.initialCost ?? 1;
  const patience = opts.patience ?? 5;
  const k = clean.classes.length;
  const coefficients = shape[1];
  const pools = clean.classes.map((_, label) => {
    const pool = clean.labelList.map((l, i) => (l === label ? -1 : i)).filter((i) => i >= 0);
    if (pool.length === 0) throw new Error(`spectral shift: no clean clip outside class '${clean.classes[label]}'`);
    return createRng(`${opts.seed ?? 0}:shift:${label}`).shuffle(pool);
  });
  const b = Math.min(opts.batchSize ?? 8, ...pools.map((p) => p.length));
  const sigma = tidy(() => std(clean.features, [0, 1]).reshape([1, 1, 1, coefficients]));
  const u = tensor(new Float32Array(k * coefficients), [k, 1, 1, coefficients]);
  const target = tensor(BigInt64Array.from(clean.classes.flatMap((_, label) => Array<bigint>(b).fill(BigInt(label)))));
  for (const t of [sigma, u, target]) t.persistent = true;
  u.requiresGrad = true;
  const optimizer = adam([u], { lr: opts.lr ?? 0.1, betas: [0.5, 0.9] });
  const state = clean.classes.map(() => newCostState(0));
  const wasTraining = model.training;
  model.eval();
  try {
    for (let step = 0; step < steps; step++) {
      const indices = pools.flatMap((pool) => Array.from({ length: b }, (_, j) => pool[(step * b + j) % pool.length]));
      const { ms, hits } = tidy(() => {
        const x = indexSelect(clean.features, 0, tensor(BigInt64Array.from(indices, BigInt))).reshape([k, b, ...shape]);
        const shifted = add(x, mul(u, sigma)).reshape([k * b, ...shape]);
        const logits = model.forward(shifted);
        const meanSquares = u.square().reshape([k, coefficients]).mean(1);
        const costs = tensor(Float32Array.from(state, (s) => s.cost));
        const loss = add(crossEntropy(logits, target, { reduction: 'sum' }).div(b), mul(meanSquares, costs).sum());
        const [g] = grad(loss, [u]) as Tensor[];
        u.grad = g;
        return { ms: meanSquares.toArray(), hits: logits.argmax(1).eq(target).reshape([k, b]).sum(1).toArray() };
      });
      optimizer.step();
      optimizer.zeroGrad();
      state.forEach((s, c) => advanceCost(s, Math.sqrt(ms[c]), hits[c] / b, { threshold, initialCost, patience }));
      opts.onProgress?.(step + 1, steps);
    }
  } finally {
    optimizer.dispose();
    for (const t of [sigma, u, target]) t.dispose();
    model.train(wasTraining);
  }
  return clean.classes.map((name, c) => {
    const s = state[c];
    const chosen = s.best ?? s.last;
    return { label: c, class: name, rms: chosen.size, success: chosen.success, reached: s.best !== null };
  });
}
