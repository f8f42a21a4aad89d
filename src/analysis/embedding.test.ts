// Embeddings: PCA finds a planted direction, t-SNE is reproducible for a seed and keeps clusters apart,
// and the penultimate features are the classifier's input.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toySet, trainToy } from '../../test/helpers/analysis-toys.ts';
import { disposeFeatureSet } from '../data/feature-set.ts';
import { createRng } from '../data/rng.ts';
import { noGrad, relu, tensor, tidy } from '../torch/index.ts';
import { embed, embedClips, penultimateFeatures } from './embedding.ts';
import { pca } from './pca.ts';

/** n points in `dims` dimensions: unit noise plus a large spread along `direction`. */
function planted(n: number, dims: number, direction: number[], spread: number, seed: number) {
  const rng = createRng(seed);
  const data = new Float32Array(n * dims);
  for (let i = 0; i < n; i++) {
    const t = rng.normal() * spread;
    for (let j = 0; j < dims; j++) data[i * dims + j] = rng.normal() + t * direction[j] + 3;
  }
  return tensor(data, [n, dims]);
}

/** Two well separated blobs of n points each in 10-D. */
function blobs(n: number, seed: number) {
  const rng = createRng(seed);
  const data = new Float32Array(2 * n * 10);
  for (let i = 0; i < 2 * n; i++) for (let j = 0; j < 10; j++) data[i * 10 + j] = rng.normal() + (i < n && j === 0 ? 12 : 0);
  return tensor(data, [2 * n, 10]);
}

describe('embeddings', () => {
  it("PCA's first axis is the planted direction and explains most of the variance", () => {
    const raw = [1, 2, -2, 0.5, 0, 1];
    const norm = Math.hypot(...raw);
    const direction = raw.map((v) => v / norm);
    const x = planted(300, 6, direction, 8, 1);
    const r = pca(x, 2);
    const axis = r.axes.select(1, 0).toArray();
    const cosine = Math.abs(axis.reduce((s, v, j) => s + v * direction[j], 0));
    assert.ok(cosine > 0.99, `cosine ${cosine}`);
    assert.ok(r.explained[0] > 0.8, `explained ${r.explained[0]}`);
    assert.ok(r.variances[0] >= r.variances[1]);
    const coordinates = r.coordinates.toArray();
    const mean = coordinates.filter((_, i) => i % 2 === 0).reduce((a, b) => a + b, 0) / 300;
    assert.ok(Math.abs(mean) < 1e-3, 'rows are centred');
    tidy(() => [x, r.coordinates, r.axes].forEach((t) => t.dispose()));
  });

  it('t-SNE gives the same map for the same seed, another for another seed, and keeps blobs apart', () => {
    const x = blobs(30, 2);
    const a = embed(x, { method: 'tsne', seed: 7, tsne: { iterations: 250, perplexity: 10 } });
    const b = embed(x, { method: 'tsne', seed: 7, tsne: { iterations: 250, perplexity: 10 } });
    const c = embed(x, { method: 'tsne', seed: 8, tsne: { iterations: 250, perplexity: 10 } });
    assert.deepEqual(a.coordinates, b.coordinates);
    assert.notDeepEqual(a.coordinates, c.coordinates);
    assert.ok(Number.isFinite(a.klDivergence));
    // Every point's nearest neighbour on the map is from its own blob.
    const pts = a.coordinates;
    let right = 0;
    pts.forEach((p, i) => {
      let best = -1;
      let bestD = Number.POSITIVE_INFINITY;
      pts.forEach((q, j) => {
        const d = (p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2;
        if (j !== i && d < bestD) [best, bestD] = [j, d];
      });
      if (best < 30 === i < 30) right++;
    });
    assert.equal(right, 60);
    x.dispose();
  });

  it('penultimate features are the classifier input; clean and triggered points are labelled', () => {
    const model = trainToy({ steps: 20 });
    const clean = toySet(12, 3);
    const triggered = toySet(12, 3, { patch: { value: 4, size: 2 } });
    const { features, predictions } = penultimateFeatures(model, 'fc', clean);
    const expected = noGrad(() =>
      tidy(() => {
        const h = model.block.forward(relu(model.bn.forward(model.stem.forward(clean.features.unsqueeze(1)))));
        const pooled = relu(model.head.forward(h));
        return relu(model.hidden.forward(pooled.reshape([12, 8, 4, 2, 4, 2]).mean([3, 5]).flatten(1))).toArray();
      }),
    );
    features.toArray().forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-5));
    assert.equal(predictions.length, 12);
    const e = embedClips(model, 'fc', clean, triggered, { method: 'pca', seed: 0 });
    assert.equal(e.points.length, 24);
    assert.deepEqual(
      e.points.map((p) => p.triggered),
      [...Array(12).fill(false), ...Array(12).fill(true)],
    );
    assert.deepEqual(
      e.points.slice(0, 12).map((p) => p.label),
      clean.labelList.map((l) => clean.classes[l]),
    );
    features.dispose();
    disposeFeatureSet(clean);
    disposeFeatureSet(triggered);
    model.dispose();
  });
});
