// The synthetic corpus must carry the word, not just the voice: a deliberately weak classifier (nearest class
// centroid on log-mel band energies of the word's segments, in plain TypeScript) trained on the train split has
// to recognise words spoken by the held-out voice variants of the test split far above chance.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { useTempDir } from '../../test/helpers/temp-dir.ts';
import { fft } from '../audio/fft.ts';
import { type ClipEntry, loadClip, readSpeechCommands } from './speech-commands.ts';
import { synthesizeSpeechCommands } from './synth.ts';

const FFT_SIZE = 512;
const WINDOW = 400;
const HOP = 160;
const BANDS = 32;
const CEPSTRA = 13;
const SEGMENTS = 5;

const toMel = (f: number) => 2595 * Math.log10(1 + f / 700);
const fromMel = (m: number) => 700 * (10 ** (m / 2595) - 1);
const edges = Array.from({ length: BANDS + 2 }, (_, b) => (fromMel(toMel(60) + ((toMel(7800) - toMel(60)) * b) / (BANDS + 1)) / 16000) * FFT_SIZE);
const hann = Float64Array.from({ length: WINDOW }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / WINDOW));

function logMelFrames(x: Float32Array): Float64Array[] {
  const frames: Float64Array[] = [];
  for (let start = 0; start + WINDOW <= x.length; start += HOP) {
    const re = new Float64Array(FFT_SIZE);
    const im = new Float64Array(FFT_SIZE);
    for (let i = 0; i < WINDOW; i++) re[i] = x[start + i] * hann[i];
    fft(re, im);
    const bands = new Float64Array(BANDS);
    for (let b = 0; b < BANDS; b++) {
      let power = 1e-10;
      for (let k = Math.ceil(edges[b]); k <= Math.floor(edges[b + 2]); k++) {
        const weight = k < edges[b + 1] ? (k - edges[b]) / (edges[b + 1] - edges[b]) : (edges[b + 2] - k) / (edges[b + 2] - edges[b + 1]);
        if (weight > 0) power += weight * (re[k] * re[k] + im[k] * im[k]);
      }
      bands[b] = Math.log(power);
    }
    frames.push(bands);
  }
  return frames;
}

/** Cepstra (without c0, so level does not matter) of the word's frames averaged over SEGMENTS equal parts. */
function wordFeatures(x: Float32Array): Float64Array {
  const frames = logMelFrames(x);
  const loudness = frames.map((f) => Math.max(...f));
  const peak = Math.max(...loudness);
  const floor = peak - Math.log(100); // frames within 20 dB of the loudest are the word
  const first = loudness.findIndex((l) => l > floor);
  let last = loudness.length - 1;
  while (loudness[last] <= floor) last--;
  const span = last - first + 1;
  const out = new Float64Array(SEGMENTS * (CEPSTRA - 1));
  for (let s = 0; s < SEGMENTS; s++) {
    const from = first + Math.floor((span * s) / SEGMENTS);
    const to = Math.max(from + 1, first + Math.floor((span * (s + 1)) / SEGMENTS));
    const mean = new Float64Array(BANDS);
    for (let i = from; i < to; i++) for (let b = 0; b < BANDS; b++) mean[b] += frames[i][b] / (to - from);
    for (let c = 1; c < CEPSTRA; c++) {
      let v = 0;
      for (let b = 0; b < BANDS; b++) v += mean[b] * Math.cos((Math.PI * c * (b + 0.5)) / BANDS);
      out[s * (CEPSTRA - 1) + c - 1] = v;
    }
  }
  return out;
}

function nearestCentroidAccuracy(train: { x: Float64Array; label: number }[], test: { x: Float64Array; label: number }[], classes: number): number {
  const dim = train[0].x.length;
  const centroids = Array.from({ length: classes }, () => new Float64Array(dim));
  const counts = new Array(classes).fill(0);
  for (const { x, label } of train) {
    counts[label]++;
    for (let j = 0; j < dim; j++) centroids[label][j] += x[j];
  }
  for (const [l, c] of centroids.entries()) for (let j = 0; j < dim; j++) c[j] /= counts[l];
  // Scale each dimension by its within-class spread so no single cepstrum dominates the distance.
  const spread = new Float64Array(dim);
  for (const { x, label } of train) for (let j = 0; j < dim; j++) spread[j] += (x[j] - centroids[label][j]) ** 2 / train.length;
  let correct = 0;
  for (const { x, label } of test) {
    let best = -1;
    let bestDistance = Number.POSITIVE_INFINITY;
    centroids.forEach((c, l) => {
      let d = 0;
      for (let j = 0; j < dim; j++) d += (x[j] - c[j]) ** 2 / (spread[j] + 1e-9);
      if (d < bestDistance) {
        bestDistance = d;
        best = l;
      }
    });
    if (best === label) correct++;
  }
  return correct / test.length;
}

describe('the synthetic corpus is learnable across held-out voices', () => {
  const work = useTempDir('kwshield-learn-');

  it('nearest-centroid on log-mel segments beats chance (10%) by a wide margin on SCD-10', async () => {
    const out = path.join(work(), 'scd10');
    await synthesizeSpeechCommands({ out, words: 'scd10', seed: 3, preset: 'tiny', clipsPerWord: { train: 24, validation: 1, test: 10 } });
    const dataset = await readSpeechCommands(out, { words: 'scd10' });
    const featurize = async (e: ClipEntry) => ({ x: wordFeatures((await loadClip(e)) as Float32Array), label: e.label });
    const train = await Promise.all(dataset.entries.filter((e) => e.split === 'train').map(featurize));
    const test = await Promise.all(dataset.entries.filter((e) => e.split === 'test').map(featurize));
    assert.equal(test.length, 100);
    const accuracy = nearestCentroidAccuracy(train, test, dataset.words.length);
    console.log(`nearest-centroid accuracy on held-out voices: ${(accuracy * 100).toFixed(1)}% (chance 10%)`);
    assert.ok(accuracy > 0.4, `accuracy ${(accuracy * 100).toFixed(1)}%`);
  });
});
