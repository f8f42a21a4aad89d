// Exploration (issue 11): forward-only statistics that might tell a backdoored model from a clean one, from the
// model and the defender's clean clips alone, and cheaply (a few forwards, no optimisation). For every class t,
// over the defender's clips of the other classes:
//   runnerUp  the share whose second-highest logit is t (dirty-label poisoning teaches the model that clips of
//             every word can be 'up', so 'up' may sit just behind the true word more often than other words);
//   prob      the mean softmax probability of t;
//   noise     the share of noise inputs (Gaussian, the clean features' per-element mean and spread) predicted t;
//   shuffled  the share of clean clips with their frames shuffled (the words destroyed, the spectra kept)
//             predicted t.
// Each statistic becomes a per-model score as Neural Cleanse does it: the MAD anomaly index of the class with
// the largest value, and that class is the suspect. Writes one row per model and the AUROC of each score.
//
// usage: npx tsx research/scan/scan-probe.ts LIST.json OUT.json   (LIST.json as research/scan/scan-zoo.ts reads it)
import { writeFileSync } from 'node:fs';
import { auroc } from '../../src/analysis/auroc.ts';
import { anomalyIndices } from '../../src/analysis/neural-cleanse.ts';
import { cleanFeatures, defenderClips } from '../../src/analysis/run-data.ts';
import { getFrontEnd } from '../../src/audio/frontends.ts';
import { disposeFeatureSet } from '../../src/data/feature-set.ts';
import { createRng } from '../../src/data/rng.ts';
import { loadModel } from '../../src/models/checkpoint.ts';
import { add, indexSelect, mean, mul, noGrad, randn, softmax, std, type Tensor, tensor, tidy } from '../../src/torch/index.ts';
import { readZoo, targetOf } from './zoo.ts';

const [listFile, outFile] = process.argv.slice(2);
if (!listFile || !outFile) throw new Error('usage: npx tsx research/scan/scan-probe.ts LIST.json OUT.json');
const list = readZoo(listFile);
const statistics = ['runnerUp', 'prob', 'noise', 'shuffled'] as const;
type Stat = (typeof statistics)[number];

/** Top-2 classes per row and the softmax probabilities, from one batched forward. */
function forward(model: { forward(x: Tensor): Tensor }, x: Tensor): { top: number[][]; probs: number[][] } {
  return noGrad(() =>
    tidy(() => {
      const logits = model.forward(x);
      const classes = logits.shape[1];
      const p = Array.from(softmax(logits, 1).toFloat32Array());
      const rows = Array.from({ length: logits.shape[0] }, (_, i) => p.slice(i * classes, (i + 1) * classes));
      const top = rows.map((r) => [...r.keys()].sort((a, b) => r[b] - r[a]).slice(0, 2));
      return { top, probs: rows };
    }),
  );
}

const rows: Record<string, unknown>[] = [];
for (const entry of list) {
  const started = Date.now();
  const { model, manifest } = loadModel(entry.run);
  model.eval();
  const data = entry.data ?? (manifest.provenance as { data?: string } | undefined)?.data ?? '/work/data/small-scd10';
  const target = targetOf(entry);
  const { clips, classes } = await defenderClips(data, manifest, { run: entry.run, cleanRatio: 0.05, seed: 0 });
  const set = await cleanFeatures(clips, classes, getFrontEnd(manifest.frontEnd));
  const labels = set.labelList;
  const clean = forward(model, set.features);
  const k = classes.length;
  const per: Record<Stat, number[]> = { runnerUp: Array(k).fill(0), prob: Array(k).fill(0), noise: Array(k).fill(0), shuffled: Array(k).fill(0) };
  for (let t = 0; t < k; t++) {
    const others = labels
      .map((l, i) => [l, i])
      .filter(([l]) => l !== t)
      .map(([, i]) => i);
    per.runnerUp[t] = others.filter((i) => clean.top[i][1] === t).length / others.length;
    per.prob[t] = others.reduce((s, i) => s + clean.probs[i][t], 0) / others.length;
  }
  const noise = tidy(() => add(mul(randn([200, ...set.features.shape.slice(1)]), std(set.features, 0)), mean(set.features, 0)));
  const noisy = forward(model, noise);
  noise.dispose();
  for (const [c] of noisy.top) per.noise[c] += 1 / noisy.top.length;
  // frames are the first feature axis after the channel for [clips, 1, frames, coefficients] inputs
  const frameAxis = set.features.ndim === 4 ? 2 : 1;
  const frames = set.features.shape[frameAxis];
  const order = createRng('0:shuffle').shuffle(Array.from({ length: frames }, (_, i) => i));
  const shuffledX = tidy(() => indexSelect(set.features, frameAxis, tensor(BigInt64Array.from(order, BigInt))));
  const shuffled = forward(model, shuffledX);
  shuffledX.dispose();
  for (const [c] of shuffled.top) per.shuffled[c] += 1 / shuffled.top.length;
  const scores: Record<string, unknown> = {};
  for (const s of statistics) {
    const { indices } = anomalyIndices(per[s].map((v) => -v)); // the largest value is the outlier
    let suspect = 0;
    per[s].forEach((v, i) => {
      if (v > per[s][suspect]) suspect = i;
    });
    scores[s] = { index: indices[suspect], suspect: classes[suspect], values: per[s].map((v) => Number(v.toFixed(4))) };
  }
  rows.push({ run: entry.run, label: entry.label, target, classes, ...scores, seconds: (Date.now() - started) / 1000 });
  process.stderr.write(
    `${entry.run} (${entry.label}): ${statistics.map((s) => `${s} ${(scores[s] as { index: number }).index.toFixed(2)} ${(scores[s] as { suspect: string }).suspect}`).join(', ')}\n`,
  );
  disposeFeatureSet(set);
  model.dispose();
}
const summary = Object.fromEntries(
  statistics.map((s) => {
    const of = (label: string) => rows.filter((r) => r.label === label).map((r) => (r[s] as { index: number }).index);
    const hits = rows.filter((r) => r.label === 'backdoored' && (r[s] as { suspect: string }).suspect === r.target).length;
    return [s, { auroc: auroc(of('backdoored'), of('clean')), targetHits: hits }];
  }),
);
writeFileSync(outFile, `${JSON.stringify({ date: new Date().toISOString(), models: rows.length, summary, rows }, null, 1)}\n`);
console.log(JSON.stringify(summary));
