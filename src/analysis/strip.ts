// STRIP (Gao et al., ACSAC 2019): an input-level trigger detector. Each input is superimposed with N clean
// clips and the model's prediction entropy is averaged over the N blends; a trigger keeps pulling the
// blends to the target whatever they are mixed with, so triggered inputs have low entropy, while a clean
// input's blends wander between classes.
//
// Blending: x + (x_j - mean), clipped to the pool's range. STRIP adds two images with weights 1 and 1 and
// clips to the pixel range, so a trigger keeps its full strength (an average would halve it: a BadNets
// block at -200 becomes -100 and may stop working, which would hide the trigger from the detector);
// adding the partner's deviation from the clean mean, rather than the partner itself, keeps the blend at
// the input's level (two MFCC c0 levels added would be far outside anything the model has seen). For
// waveforms the mean is ~0, so this is the plain sum clipped to the clean clips' sample range. For audio
// the blend is of waveforms, before the front-end (`toModelInput`), which is what a microphone would hear
// of two overlapping sounds; for a feature-domain trigger (Audio BadNets writes into the MFCC, so no
// waveform carries it) the blend is of features. The threshold is a low percentile of clean clips'
// entropies (STRIP fixes the false-rejection rate, 1% in the paper), see stripThreshold.
import { createRng, deriveSeed } from '../data/rng.ts';
import type { KwsModel } from '../models/registry.ts';
import { add, clamp, indexSelect, logSoftmax, noGrad, sub, type Tensor, tensor, tidy } from '../torch/index.ts';

export interface StripOptions {
  /** clean clips blended with each input (default 32; Gao et al. show N = 20 already separates) */
  mixes?: number;
  seed?: number;
  /** blends per forward (default 256) */
  rowsPerForward?: number;
  /** the model input of a batch of blends, e.g. the front-end for waveforms (default: the blends themselves) */
  toModelInput?: (blends: Tensor) => Tensor;
  /** for input i, the index of the same clip in the pool (never blended with itself), or -1 */
  selfInPool?: (i: number) => number;
}

/** Mean prediction entropy (nats) of every input row blended with `mixes` pool rows (same shape per row); eval mode. */
export function stripEntropies(model: KwsModel, inputs: Tensor, pool: Tensor, opts: StripOptions = {}): number[] {
  const n = inputs.shape[0];
  const m = pool.shape[0];
  const self = opts.selfInPool ?? (() => -1);
  const available = (i: number) => m - (self(i) >= 0 ? 1 : 0);
  if (n > 0 && Math.min(...Array.from({ length: n }, (_, i) => available(i))) < 1) throw new Error('STRIP needs at least one other clean clip to blend with');
  const mixes = opts.mixes ?? 32;
  const seed = opts.seed ?? 0;
  const perForward = Math.max(1, Math.floor((opts.rowsPerForward ?? 256) / mixes));
  // Each input's partners: distinct pool clips (other than itself), from a per-input seed.
  const partners = Array.from({ length: n }, (_, i) => {
    const own = self(i);
    const order = createRng(deriveSeed(seed, 'strip', i)).shuffle(Array.from({ length: m }, (_, j) => j).filter((j) => j !== own));
    return Array.from({ length: mixes }, (_, k) => order[k % order.length]);
  });
  const wasTraining = model.training;
  model.eval();
  const out: number[] = [];
  const centre = tidy(() => pool.mean(0, true));
  centre.persistent = true;
  const [lo, hi] = tidy(() => [pool.min().item(), pool.max().item()]);
  try {
    noGrad(() => {
      for (let start = 0; start < n; start += perForward) {
        const rows = Array.from({ length: Math.min(perForward, n - start) }, (_, k) => start + k);
        tidy(() => {
          const own = indexSelect(inputs, 0, tensor(BigInt64Array.from(rows.flatMap((i) => Array<bigint>(mixes).fill(BigInt(i))))));
          const others = indexSelect(
            pool,
            0,
            tensor(
              BigInt64Array.from(
                rows.flatMap((i) => partners[i]),
                BigInt,
              ),
            ),
          );
          const blends = clamp(add(own, sub(others, centre)), lo, hi);
          const logits = model.forward(opts.toModelInput ? opts.toModelInput(blends) : blends);
          const logp = logSoftmax(logits, 1);
          const entropy = logp.exp().mul(logp).sum(1).neg().reshape([rows.length, mixes]).mean(1).toArray();
          out.push(...entropy);
        });
      }
    });
  } finally {
    centre.dispose();
    model.train(wasTraining);
  }
  return out;
}

/** The q-quantile (linear interpolation between order statistics, numpy's default) of values. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const pos = Math.min(Math.max(q, 0), 1) * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/**
 * The entropy below which an input is flagged: the `falseRejection` quantile of clean clips' entropies
 * (default 0.01, STRIP's FRR of 1%), so that about that share of clean clips is flagged.
 */
export function stripThreshold(cleanEntropies: readonly number[], falseRejection = 0.01): number {
  return quantile(cleanEntropies, falseRejection);
}
