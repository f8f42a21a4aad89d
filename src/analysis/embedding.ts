// 2-D pictures of what the model's classifier sees (the GN-FT paper's Fig. 5): the penultimate features,
// i.e. the input of the classifier Linear (caught with a forward hook), of clean clips and of their
// triggered copies, embedded together by PCA or t-SNE so that both share one map.
import { batchIndices, type FeatureSet, gatherBatch } from '../data/feature-set.ts';
import { moduleAt } from '../models/neurons.ts';
import type { KwsModel } from '../models/registry.ts';
import { withForwardHook } from '../nn/index.ts';
import { cat, keep, noGrad, type Tensor, tidy } from '../torch/index.ts';
import { pca } from './pca.ts';
import { type TsneOptions, tsne } from './tsne.ts';

export type EmbeddingMethod = 'pca' | 'tsne';

export interface EmbeddingPoint {
  x: number;
  y: number;
  /** the clip's true class */
  label: string;
  triggered: boolean;
  /** the class the model predicts for the clip */
  predicted: string;
}

export interface Embedding {
  method: EmbeddingMethod;
  seed: number;
  points: EmbeddingPoint[];
  /** PCA: the share of variance on each axis; t-SNE: the final KL divergence */
  explained?: number[];
  klDivergence?: number;
}

/** Penultimate features [N, D] (the classifier's input, flattened) and the predicted class of every clip, in eval mode. */
export function penultimateFeatures(model: KwsModel, classifier: string, set: FeatureSet, batchSize = 128): { features: Tensor; predictions: number[] } {
  const wasTraining = model.training;
  model.eval();
  const parts: Tensor[] = [];
  const predictions: number[] = [];
  try {
    noGrad(() => {
      for (const indices of batchIndices(set.size, batchSize)) {
        tidy(() => {
          const { x } = gatherBatch(set, indices);
          let caught: Tensor | undefined;
          const logits = withForwardHook(
            moduleAt(model, classifier),
            (_out, input) => {
              caught = keep(input.reshape([input.shape[0], -1]).clone());
              return undefined;
            },
            () => model.forward(x),
          );
          if (!caught) throw new Error(`the classifier '${classifier}' was not called by the model's forward`);
          parts.push(caught);
          predictions.push(...logits.argmax(1).toArray());
        });
      }
    });
    const features = keep(tidy(() => cat(parts, 0)));
    return { features, predictions };
  } finally {
    for (const p of parts) p.dispose();
    model.train(wasTraining);
  }
}

export interface EmbedOptions {
  method?: EmbeddingMethod;
  seed?: number;
  tsne?: Omit<TsneOptions, 'seed'>;
}

/** Coordinates [N, 2] of the rows of `features`, by PCA or t-SNE. */
export function embed(features: Tensor, opts: EmbedOptions = {}): { coordinates: number[][]; explained?: number[]; klDivergence?: number } {
  const method = opts.method ?? 'tsne';
  return tidy(() => {
    const rows = (t: Tensor) => {
      const flat = t.toArray();
      return Array.from({ length: t.shape[0] }, (_, i) => [flat[2 * i], flat[2 * i + 1] ?? 0]);
    };
    if (method === 'pca') {
      const r = pca(features, 2);
      return { coordinates: rows(r.coordinates.shape[1] === 2 ? r.coordinates : cat([r.coordinates, r.coordinates.zerosLike()], 1)), explained: r.explained };
    }
    const r = tsne(features, { ...opts.tsne, seed: opts.seed ?? 0 });
    return { coordinates: rows(r.coordinates), klDivergence: r.klDivergence };
  });
}

/**
 * The embedding of the clean clips and (when given) their triggered copies: one point per clip with its
 * true class, whether it is triggered and what the model predicts.
 */
export function embedClips(model: KwsModel, classifier: string, clean: FeatureSet, triggered: FeatureSet | undefined, opts: EmbedOptions = {}): Embedding {
  const method = opts.method ?? 'tsne';
  const seed = opts.seed ?? 0;
  const sets = [clean, ...(triggered ? [triggered] : [])];
  const caught = sets.map((s) => penultimateFeatures(model, classifier, s));
  try {
    const all = tidy(() =>
      cat(
        caught.map((c) => c.features),
        0,
      ),
    );
    const { coordinates, explained, klDivergence } = embed(all, { ...opts, method, seed });
    all.dispose();
    const points: EmbeddingPoint[] = [];
    sets.forEach((s, k) => {
      s.labelList.forEach((label, i) => {
        const [x, y] = coordinates[points.length];
        points.push({ x, y, label: s.classes[label], triggered: k === 1, predicted: s.classes[caught[k].predictions[i]] });
      });
    });
    return { method, seed, points, ...(explained ? { explained } : {}), ...(klDivergence !== undefined ? { klDivergence } : {}) };
  } finally {
    for (const c of caught) c.features.dispose();
  }
}
