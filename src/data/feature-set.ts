// Features in memory for training and evaluation: one persistent tensor of clips and their labels,
// batched by index. Subsets share nothing mutable with their parent.
import { dispose, indexSelect, keep, type Tensor, tensor, tidy } from '../torch/index.ts';
import { createRng } from './rng.ts';

export interface FeatureSet {
  /** [clips, ...featureShape] */
  features: Tensor;
  /** [clips] int64 class indices */
  labels: Tensor;
  /** the same labels as numbers, for bookkeeping without touching the tensor */
  labelList: number[];
  classes: string[];
  size: number;
}

/** Takes ownership of features and labels (they become persistent until disposeFeatureSet). */
export function makeFeatureSet(features: Tensor, labels: number[], classes: string[]): FeatureSet {
  if (features.shape[0] !== labels.length) {
    throw new Error(`feature set: ${features.shape[0]} feature rows but ${labels.length} labels`);
  }
  const bad = labels.findIndex((l) => !Number.isInteger(l) || l < 0 || l >= classes.length);
  if (bad >= 0) throw new Error(`feature set: label ${labels[bad]} at index ${bad} is not a class index in [0, ${classes.length})`);
  return {
    features: keep(features),
    labels: keep(tensor(BigInt64Array.from(labels, BigInt))),
    labelList: [...labels],
    classes,
    size: labels.length,
  };
}

export function disposeFeatureSet(set: FeatureSet): void {
  dispose(set.features, set.labels);
}

/** The clips at `indices`, as a new feature set. */
export function subsetOf(set: FeatureSet, indices: number[]): FeatureSet {
  const features = tidy(() => indexSelect(set.features, 0, tensor(BigInt64Array.from(indices, BigInt))));
  return makeFeatureSet(
    features,
    indices.map((i) => set.labelList[i]),
    set.classes,
  );
}

/** Batches of indices covering 0..size-1, shuffled by seed when asked. */
export function batchIndices(size: number, batchSize: number, opts: { shuffle?: boolean; seed?: number; dropLast?: boolean } = {}): number[][] {
  const order = Array.from({ length: size }, (_, i) => i);
  if (opts.shuffle) createRng(opts.seed ?? 0).shuffle(order);
  const out: number[][] = [];
  for (let i = 0; i < size; i += batchSize) {
    const batch = order.slice(i, i + batchSize);
    if (opts.dropLast && batch.length < batchSize) break;
    out.push(batch);
  }
  return out;
}

/** One batch's features and labels (tracked by the caller's tidy scope). */
export function gatherBatch(set: FeatureSet, indices: number[]): { x: Tensor; y: Tensor } {
  const index = tensor(BigInt64Array.from(indices, BigInt));
  return { x: indexSelect(set.features, 0, index), y: indexSelect(set.labels, 0, index) };
}

/**
 * A class-stratified sample of round(ratio * count) clips per class (at least one per non-empty
 * class), chosen by seed, never taking an index in `exclude` (e.g. poisoned clips).
 */
export function stratifiedSample(labels: readonly number[], ratio: number, seed: number, exclude: ReadonlySet<number> = new Set()): number[] {
  if (!(ratio > 0 && ratio <= 1)) throw new RangeError(`clean ratio must be in (0, 1], got ${ratio}`);
  const byClass = new Map<number, number[]>();
  labels.forEach((label, i) => {
    if (exclude.has(i)) return;
    byClass.set(label, [...(byClass.get(label) ?? []), i]);
  });
  const rng = createRng(seed);
  const chosen: number[] = [];
  for (const label of [...byClass.keys()].sort((a, b) => a - b)) {
    const pool = rng.shuffle([...(byClass.get(label) as number[])]);
    const take = Math.max(1, Math.round(ratio * pool.length));
    chosen.push(...pool.slice(0, take));
  }
  return chosen.sort((a, b) => a - b);
}
