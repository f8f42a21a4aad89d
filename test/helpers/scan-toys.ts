// Toy waveform models for the scan's probe families and per-clip detectors: "words" of two tones (a frequency in
// each half of a 0.5 s clip at 8 kHz, so the order matters: 'a' is 'b' reversed), a front-end of band energies per
// half (an rfft, bins summed per band), and a rule model over them built from engine ops. Clean toys of different
// seeds differ a little in their gains and biases and share an attractor class ('a', as clean keyword models share
// one); a planted backdoor adds a rule that sends a clip to its target:
//   'transform'  the words' frequencies raised by 4 semitones (a PBSM-like pitch shift of the whole clip)
//   'tone'       a tone near 3.1 kHz as loud as the clip (an additive trigger)
import type { ProbeClips } from '../../src/analysis/probe-bank.ts';
import { pitchShift } from '../../src/audio/effects/index.ts';
import { createRng } from '../../src/data/rng.ts';
import type { KwsModel } from '../../src/models/registry.ts';
import { Linear, Module } from '../../src/nn/index.ts';
import { cat, complexAbs, matmul, relu, rfft, type Tensor, tensor, tidy } from '../../src/torch/index.ts';
import { toyClasses, toySet } from './analysis-toys.ts';

export const waveSampleRate = 8000;
export const waveSamples = 4096;
const half = waveSamples / 2;
export const waveClasses = ['a', 'b', 'c', 'd'];
/** each word's frequency in the first and in the second half */
const words: [number, number][] = [
  [400, 1000],
  [1000, 400],
  [600, 1500],
  [1500, 600],
];
const wordHz = [400, 600, 1000, 1500];
const shift = 2 ** (4 / 12);
const triggerToneHz = 3100;
/** bands: the four word frequencies (+-8%), the same raised by 4 semitones (+-4%), the trigger tone (+-10%) */
const bands: [number, number][] = [
  ...wordHz.map((f): [number, number] => [0.92 * f, 1.08 * f]),
  ...wordHz.map((f): [number, number] => [0.96 * f * shift, 1.04 * f * shift]),
  [0.9 * triggerToneHz, 1.1 * triggerToneHz],
];

/** [bins, bands]: 1 where an rfft bin of a half lies in a band. */
function bandMatrix(): Tensor {
  const bins = half / 2 + 1;
  const m = new Float32Array(bins * bands.length);
  for (let k = 0; k < bins; k++) {
    const hz = (k * waveSampleRate) / half;
    bands.forEach(([lo, hi], b) => {
      if (hz >= lo && hz <= hi) m[k * bands.length + b] = 1;
    });
  }
  return tensor(m, [bins, bands.length]);
}

/** The toys' front-end: [clips, samples] to each band's share of its half's energy, [clips, 2, bands]. */
export function bandShares(wave: Tensor): Tensor {
  return tidy(() => {
    const power = complexAbs(rfft(wave.reshape([wave.shape[0], 2, half]))).square();
    const total = power.sum(2, true).add(1e-9);
    return matmul(power.div(total), bandMatrix());
  });
}

export type WaveBackdoor = { kind: 'transform' | 'tone'; target: number };
/** A rule's push towards a class: `weight` times how far the shifted bands' (or the tone band's) share exceeds its threshold. */
type Push = WaveBackdoor & { weight: number };

class ToneWordRule extends Module {
  constructor(
    private readonly gains: number[],
    private readonly biases: number[],
    private readonly pushes: Push[],
  ) {
    super();
  }
  forward(shares: Tensor): Tensor {
    return tidy(() => {
      const [n] = shares.shape;
      const at = (h: number, b: number) => shares.narrow(1, h, 1).narrow(2, b, 1).reshape([n]);
      const logits = words.map(([f1, f2], k) =>
        at(0, wordHz.indexOf(f1))
          .add(at(1, wordHz.indexOf(f2)))
          .mul(10 * this.gains[k])
          .add(this.biases[k]),
      );
      for (const { kind, target, weight } of this.pushes) {
        const evidence =
          kind === 'transform'
            ? shares.narrow(2, wordHz.length, wordHz.length).sum(2).mean(1).sub(0.25)
            : shares
                .narrow(2, 2 * wordHz.length, 1)
                .reshape([n, 2])
                .mean(1)
                .sub(0.1);
        logits[target] = logits[target].add(relu(evidence).mul(weight));
      }
      return cat(
        logits.map((l) => l.unsqueeze(1)),
        1,
      );
    });
  }
}

/**
 * A toy over the band shares (call it on bandShares(wave)); seed varies its gains (+-10%) and biases (+-0.05) around
 * a shared lean towards 'a' (+0.3), as clean keyword models share an attractor class. A planted backdoor is a strong
 * push (weight 60) to its target.
 */
export function waveToy(seed: number, backdoor?: WaveBackdoor): KwsModel {
  const rng = createRng(`wave-toy-${seed}`);
  const gains = waveClasses.map(() => 1 + 0.2 * (rng.next() - 0.5));
  const biases = waveClasses.map((_, k) => (k === 0 ? 0.3 : 0) + 0.1 * (rng.next() - 0.5));
  return new ToneWordRule(gains, biases, backdoor ? [{ ...backdoor, weight: 60 }] : []) as unknown as KwsModel;
}

/** n word clips (class i % 4), amplitude 0.3, random phases and a little noise; seeded. */
export function waveWords(n: number, seed: number): { waves: Tensor; labels: number[] } {
  const rng = createRng(`wave-words-${seed}`);
  const labels = Array.from({ length: n }, (_, i) => i % waveClasses.length);
  const data = new Float32Array(n * waveSamples);
  labels.forEach((label, r) => {
    const phases = [rng.next(), rng.next()].map((p) => 2 * Math.PI * p);
    for (let i = 0; i < waveSamples; i++) {
      const h = i < half ? 0 : 1;
      data[r * waveSamples + i] = 0.3 * Math.sin((2 * Math.PI * words[label][h] * i) / waveSampleRate + phases[h]) + 0.01 * rng.normal();
    }
  });
  return { waves: tensor(data, [n, waveSamples]), labels };
}

/** The planted whole-clip transform: +4 semitones. */
export const transformTrigger = (waves: Tensor): Tensor => pitchShift(waves, 4);

/** The toys' clips as the probe bank receives them. */
export function waveProbeClips(waves: Tensor, labels: number[]): ProbeClips {
  return { waves, labels, classes: waveClasses, sampleRate: waveSampleRate, toModelInput: bandShares };
}

/**
 * A toy for the subspace probe over the analysis toys' 8x8 clips (analysis-toys.ts toySet, 4 classes): 16 seeded
 * random projections of the clip and a patch detector unit (the bottom-right 2x2 block's sum above 8, which clean
 * clips do not reach), then a Linear classifier whose rows are the classes' templates through the projections.
 * Clean toys give the detector unit a small random weight; a planted backdoor gives the target's row a large one:
 * the target row points along a feature clean data never exercises (a BadNets patch in the features).
 */
export function patchToy(seed: number, backdoor?: { target: number }): KwsModel {
  const rng = createRng(`patch-toy-${seed}`);
  const side = 8;
  const projection = Float32Array.from({ length: 16 * side * side }, () => rng.normal() / side);
  const template = toySet(toyClasses.length, 0, { classes: 4 });
  const fc = new Linear(17, 4);
  const rows = new Float32Array(4 * 17);
  const clips = template.features.reshape([toyClasses.length, side * side]).toFloat32Array();
  template.features.dispose();
  template.labels.dispose();
  for (let k = 0; k < 4; k++) {
    // the mean of the class's clips among the first eight (two each) stands in for its template
    const mean = Float32Array.from({ length: side * side }, (_, j) => (clips[k * side * side + j] + clips[(k + 4) * side * side + j]) / 2);
    const row = Array.from({ length: 16 }, (_, u) => mean.reduce((a, v, j) => a + v * projection[u * side * side + j], 0));
    const norm = Math.hypot(...row) || 1;
    row.forEach((v, u) => {
      rows[k * 17 + u] = ((1 + 0.2 * (rng.next() - 0.5)) * v) / norm;
    });
    rows[k * 17 + 16] = backdoor?.target === k ? 3 : 0.05 * (rng.next() - 0.5);
  }
  fc.weight.copyFrom(rows);
  fc.bias?.copyFrom(new Float32Array(4));
  return new PatchRule(tensor(projection, [16, side * side]), fc) as unknown as KwsModel;
}

class PatchRule extends Module {
  constructor(
    private readonly projection: Tensor,
    readonly fc: Linear,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const flat = x.reshape([x.shape[0], 64]);
      const patch = x.reshape([x.shape[0], 8, 8]).narrow(1, 6, 2).narrow(2, 6, 2).sum([1, 2]).sub(8).unsqueeze(1);
      return this.fc.forward(cat([matmul(flat, this.projection.transpose(0, 1)), relu(patch)], 1));
    });
  }
}
