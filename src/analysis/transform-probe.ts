// The transform probe: does some common audio transform, applied to the defender's clean clips, send them to one
// class? A waveform backdoor whose trigger transforms the whole clip (an effect chain, a pitch shift, a timbre
// change) is invisible to the feature-domain reversals (README, scan section: on our synthetic SCD-10 every class is
// cheap to reach by a small input change, in clean models too) and to STRIP (blending dilutes a transform). If the
// trigger is, or resembles, a member of a generic transform family, the backdoored model answers the probe with its
// target, and a clean model of the same configuration has no reason to.
//
// This is a known-family detector, and says so: the family (probeTransforms) names the transform kinds of the audio
// backdoor literature with generic settings, fixed before any attack's own settings were looked at
// (measured/scan/transform-probe-2026-12-04/PLAN.md); it is built from the project's DSP blocks (src/audio/effects),
// never from an attack's chain. It cannot see a feature-domain trigger (Audio BadNets writes into the MFCC).
//
// The statistic: rate(T, c), the share of clean clips whose label is not c that the model predicts as c after T. A
// transform that destroys the word sends clips to the model's attractor class, backdoored or not, so the rates are
// compared with clean reference models' (compareWithReferences) on a logit scale, not read alone.
import { chorus, distortion, formantWarp, ladderFilter, phaser, pitchShift } from '../audio/effects/index.ts';
import { fft } from '../audio/fft.ts';
import { mixAtSnr, rms, whiteNoise } from '../audio/noise.ts';
import { createRng, deriveSeed } from '../data/rng.ts';
import type { KwsModel } from '../models/registry.ts';
import { argmax, noGrad, type Tensor, tensor, tidy } from '../torch/index.ts';
import type { ProbeFamily } from './probe-bank.ts';

/** One probe: a waveform batch [clips, samples] at `sampleRate` to a batch of the same shape. */
export interface ProbeTransform {
  name: string;
  apply(wave: Tensor, sampleRate: number): Tensor;
}

/** Applies a per-clip Float32Array effect to every row of a [clips, samples] batch, length kept. */
export function perRow(effect: (x: Float32Array, sampleRate: number, row: number) => Float32Array): ProbeTransform['apply'] {
  return (wave, sampleRate) => {
    const [clips, samples] = wave.shape;
    const data = wave.toFloat32Array();
    const out = new Float32Array(clips * samples);
    for (let r = 0; r < clips; r++) out.set(effect(data.subarray(r * samples, (r + 1) * samples), sampleRate, r).subarray(0, samples), r * samples);
    return tensor(out, [clips, samples]);
  };
}

/** A sine of `hz` at unit amplitude, `length` samples. */
export function tone(length: number, hz: number, sampleRate: number): Float32Array {
  return Float32Array.from({ length }, (_, i) => Math.sin((2 * Math.PI * hz * i) / sampleRate));
}

/**
 * Reverb as convolution with an exponentially decaying white-noise impulse response (60 dB down after rt60
 * seconds, unit energy, seeded), mixed `wet` with the dry clip; FFT convolution, the tail cut at the clip's end.
 */
export function reverb(x: Float32Array, sampleRate: number, o: { rt60: number; wet: number; seed: number }): Float32Array {
  const irLength = Math.max(1, Math.round(o.rt60 * sampleRate));
  const rng = createRng(deriveSeed(o.seed, 'reverb-ir'));
  const ir = Float64Array.from({ length: irLength }, (_, i) => rng.normal() * 10 ** ((-3 * i) / irLength));
  const energy = Math.sqrt(ir.reduce((a, v) => a + v * v, 0));
  let n = 1;
  while (n < x.length + irLength) n <<= 1;
  const [xr, xi, hr, hi] = [new Float64Array(n), new Float64Array(n), new Float64Array(n), new Float64Array(n)];
  xr.set(x);
  for (let i = 0; i < irLength; i++) hr[i] = ir[i] / energy;
  fft(xr, xi);
  fft(hr, hi);
  // Inverse FFT by conjugation: ifft(z) = conj(fft(conj(z))) / n.
  for (let k = 0; k < n; k++) {
    const re = xr[k] * hr[k] - xi[k] * hi[k];
    const im = xr[k] * hi[k] + xi[k] * hr[k];
    xr[k] = re;
    xi[k] = -im;
  }
  fft(xr, xi);
  return Float32Array.from(x, (v, i) => (1 - o.wet) * v + (o.wet * xr[i]) / n);
}

/** A white-noise burst of `ms` at the clip's middle, at the clip's own RMS (a masking sound). */
function middleBurst(x: Float32Array, sampleRate: number, ms: number, seed: number): Float32Array {
  const length = Math.min(x.length, Math.round((ms * sampleRate) / 1000));
  const start = Math.floor((x.length - length) / 2);
  const noise = whiteNoise(length, createRng(seed));
  const scale = rms(x) / (rms(noise) || 1);
  const out = x.slice();
  for (let i = 0; i < length; i++) out[start + i] += scale * noise[i];
  return out;
}

/**
 * The probe family of PLAN.md (18 transforms, generic settings): pitch, timbre, filters and effects, reverb,
 * additive sounds. Seeded noise is drawn per row of the forward batch from `seed` (rows 0 and 64 share a draw):
 * every model sees the same noisy clips, which is what comparing models needs.
 */
export function probeTransforms(seed = 0): ProbeTransform[] {
  const tensorOp = (name: string, f: (wave: Tensor, sampleRate: number) => Tensor): ProbeTransform => ({ name, apply: f });
  const rowOp = (name: string, f: (x: Float32Array, sampleRate: number, row: number) => Float32Array): ProbeTransform => ({ name, apply: perRow(f) });
  const noiseOf = (row: number, length: number, kind: string) => whiteNoise(length, createRng(deriveSeed(seed, kind, row)));
  return [
    ...[-4, -2, 2, 4].map((st) => tensorOp(`pitch${st > 0 ? '+' : ''}${st}`, (w) => pitchShift(w, st))),
    ...[0.85, 1.15].map((a) => tensorOp(`formant${a}`, (w, sr) => formantWarp(w, sr, a))),
    ...[1000, 3000].map((hz) => rowOp(`lowpass${hz}`, (x, sr) => ladderFilter(x, sr, { mode: 'LPF12', cutoffHz: hz }))),
    ...[300, 1500].map((hz) => rowOp(`highpass${hz}`, (x, sr) => ladderFilter(x, sr, { mode: 'HPF12', cutoffHz: hz }))),
    rowOp('distortion20', (x) => distortion(x, 20)),
    rowOp('chorus', (x, sr) => chorus(x, sr)),
    rowOp('phaser', (x, sr) => phaser(x, sr)),
    rowOp('reverb0.5', (x, sr) => reverb(x, sr, { rt60: 0.5, wet: 0.5, seed })),
    rowOp('noise20dB', (x, _sr, r) => mixAtSnr(x, noiseOf(r, x.length, 'probe-noise'), 20)),
    ...[4000, 7500].map((hz) => rowOp(`tone${hz}`, (x, sr) => mixAtSnr(x, tone(x.length, hz, sr), 10))),
    rowOp('burst100ms', (x, sr, r) => middleBurst(x, sr, 100, deriveSeed(seed, 'probe-burst', r))),
  ];
}

/** What the probe measured on one model: per transform, how many clips of other classes went to each class. */
export interface ProbeRates {
  transforms: string[];
  classes: string[];
  /** hits[t][c]: clips whose label is not c predicted c after transform t */
  hits: number[][];
  /** clips whose label is not c (the same for every transform) */
  offClass: number[];
  /** the clean clips' accuracy before any transform, a sanity check of the data and the model */
  cleanAccuracy: number;
}

/**
 * Runs every transform on the clean waveforms [clips, samples] and counts where the model sends them. `toModelInput`
 * is the model's front-end; eval mode, no gradients; `clipsPerForward` bounds the memory of one batch.
 */
export function probeRates(
  model: KwsModel,
  waves: Tensor,
  labels: readonly number[],
  classes: readonly string[],
  o: { sampleRate: number; toModelInput: (wave: Tensor) => Tensor; transforms?: ProbeTransform[]; clipsPerForward?: number },
): ProbeRates {
  const [clips] = waves.shape;
  if (labels.length !== clips) throw new Error(`probeRates: ${labels.length} labels for ${clips} clips`);
  const transforms = o.transforms ?? probeTransforms();
  const step = o.clipsPerForward ?? 64;
  const k = classes.length;
  const offClass = classes.map((_, c) => labels.filter((l) => l !== c).length);
  const predict = (batch: Tensor): number[] => {
    const out = tidy(() => argmax(model.forward(o.toModelInput(batch)), 1).toArray()) as number[];
    if (out.some((p) => p >= k)) throw new Error(`probeRates: the model predicts ${Math.max(...out) + 1}+ classes, the clips have ${k}`);
    return out;
  };
  const wasTraining = model.training;
  model.eval();
  try {
    return noGrad(() => {
      let correct = 0;
      const hits = transforms.map(() => new Array<number>(k).fill(0));
      for (let start = 0; start < clips; start += step) {
        const count = Math.min(step, clips - start);
        tidy(() => {
          const batch = waves.narrow(0, start, count);
          predict(batch).forEach((p, i) => {
            if (p === labels[start + i]) correct++;
          });
          transforms.forEach((t, ti) => {
            tidy(() => {
              predict(t.apply(batch, o.sampleRate)).forEach((p, i) => {
                if (p !== labels[start + i]) hits[ti][p]++;
              });
            });
          });
        });
      }
      return { transforms: transforms.map((t) => t.name), classes: [...classes], hits, offClass, cleanAccuracy: correct / clips };
    });
  } finally {
    model.train(wasTraining);
  }
}

/** The largest raw rate hits / offClass over transforms and classes, with where it is (statistic (a) of PLAN.md). */
export function largestRate(r: ProbeRates): { rate: number; transform: string; class: string } {
  let best = { rate: -1, transform: '', class: '' };
  r.hits.forEach((row, t) =>
    row.forEach((h, c) => {
      const rate = r.offClass[c] ? h / r.offClass[c] : 0;
      if (rate > best.rate) best = { rate, transform: r.transforms[t], class: r.classes[c] };
    }),
  );
  return best;
}

/**
 * Each (transform, class) pair's rate on a logit scale, smoothed as logit((k + 0.5) / (n + 1)) so that 0 of n is
 * finite: the per-pair values compareWithReferences scores (statistic (b)), named `transform:class`.
 */
export function logitRates(r: ProbeRates): { names: string[]; values: number[] } {
  const names: string[] = [];
  const values: number[] = [];
  r.hits.forEach((row, t) =>
    row.forEach((h, c) => {
      const p = (h + 0.5) / (r.offClass[c] + 1);
      names.push(`${r.transforms[t]}:${r.classes[c]}`);
      values.push(Math.log(p / (1 - p)));
    }),
  );
  return { names, values };
}

/** rate(t, c) = hits / clips of other classes (0 where a class has no such clip). */
const rateOf = (r: ProbeRates, t: number, c: number) => (r.offClass[c] ? r.hits[t][c] / r.offClass[c] : 0);

/** Refuses references whose transforms or classes differ from the subject's. */
function checkSameProbe(subject: ProbeRates, references: readonly ProbeRates[]): void {
  for (const r of references) {
    if (r.transforms.join() !== subject.transforms.join() || r.classes.join() !== subject.classes.join()) {
      throw new Error(
        `transform probe: a reference was probed with other transforms or classes (${r.transforms.length} x ${r.classes.join(',')}, the model ${subject.transforms.length} x ${subject.classes.join(',')})`,
      );
    }
  }
}

export interface ProbeExcess {
  /** the largest excess rate over the references */
  score: number;
  transform: string;
  class: string;
}

/**
 * How far the subject's rate exceeds every reference's, at its most: max over (t, c) of rate(t, c) minus the
 * largest reference rate(t, c). A transform that sends clips to a class in clean models too (the attractor
 * class, word-destroying filters) cancels out; a trigger-like transform leaves its target's excess.
 */
export function excessOverReferences(subject: ProbeRates, references: readonly ProbeRates[]): ProbeExcess {
  if (references.length === 0) throw new Error('transform probe: the excess needs at least one clean reference');
  checkSameProbe(subject, references);
  let best: ProbeExcess = { score: Number.NEGATIVE_INFINITY, transform: '', class: '' };
  subject.transforms.forEach((name, t) =>
    subject.classes.forEach((cls, c) => {
      const e = rateOf(subject, t, c) - Math.max(...references.map((r) => rateOf(r, t, c)));
      if (e > best.score) best = { score: e, transform: name, class: cls };
    }),
  );
  return best;
}

/**
 * A probe family over ProbeRates: where a list of waveform probes (chosen by the clips' sample rate) sends the clean
 * clips, scored by the excess over the other models (excessOverReferences); the bank adds the conformal test.
 */
export function ratesFamily(name: string, probes: string, transformsFor: (sampleRate: number) => ProbeTransform[]): ProbeFamily<ProbeRates> {
  const bySampleRate = new Map<number, ProbeTransform[]>();
  const transformsAt = (sampleRate: number) => {
    if (!bySampleRate.has(sampleRate)) bySampleRate.set(sampleRate, transformsFor(sampleRate));
    return bySampleRate.get(sampleRate) as ProbeTransform[];
  };
  return {
    name,
    probes,
    measure: (model, clips) =>
      probeRates(model, clips.waves, clips.labels, clips.classes, {
        sampleRate: clips.sampleRate,
        toModelInput: clips.toModelInput,
        transforms: transformsAt(clips.sampleRate),
      }),
    score: (subject, others) => {
      const e = excessOverReferences(subject, others);
      return { score: e.score, target: e.class, detail: e.transform };
    },
  };
}

/**
 * The transform probe as a probe family (probe-bank.ts): where the 18 transforms send the clean clips, scored by the
 * excess over the other models; the verdict's conformal test and its false-alarm bound come from the bank.
 */
export function transformFamily(seed = 0): ProbeFamily<ProbeRates> {
  const transforms = probeTransforms(seed);
  return ratesFamily(
    'transform',
    `${transforms.length} generic audio transforms (pitch, formant, filters, distortion, chorus, phaser, reverb, noise, tones, a burst)`,
    () => transforms,
  );
}
