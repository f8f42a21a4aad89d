// A per-clip trigger detector for the triggers STRIP misses (strip.ts): the ones that transform the whole clip
// (JingleBack's effect chain, PBSM's pitch shift, VSVC's timbre), which blending dilutes. It follows the dual
// anomaly STEP describes (Wang et al., "STEP: Detecting Audio Backdoor Attacks via Stability-based Trigger Exposure
// Profiling", arXiv 2603.18103, 2026): a triggered clip's label survives perturbations that destroy the words but
// keep the clip's overall character, and breaks under mild ones that keep the words but disturb a fragile trigger.
// Our own simple form of it, hard labels only:
//   breaking   time reversal and shuffles of 25, 50 and 100 ms segments (two draws each): the spectrum, pitch and
//              timbre stay, the word's order goes; a clean clip's label scatters, a trigger's target stays;
//   preserving pitch -1 / +1 semitone, a low-pass, a high-pass, noise at 30 dB, a 50 ms delay, a light reverb:
//              the word stays, so a clean clip keeps its label; a trigger tied to an exact setting may not.
// The clip's score is the share of breaking perturbations that keep its predicted label minus the share of
// preserving ones that keep it (-1 for a model that only hears words, +1 for a pure trigger response). The
// threshold is the defender's clean clips' (1 - false-alarm) quantile: at most that share of clean clips lies above it.
import { ladderFilter, pitchShift } from '../audio/effects/index.ts';
import { mixAtSnr, whiteNoise } from '../audio/noise.ts';
import { createRng, deriveSeed } from '../data/rng.ts';
import type { KwsModel } from '../models/registry.ts';
import { argmax, noGrad, type Tensor, tidy } from '../torch/index.ts';
import { quantile } from './strip.ts';
import { perRow, reverb } from './transform-probe.ts';

export interface StabilityPerturbation {
  name: string;
  kind: 'breaking' | 'preserving';
  /** a waveform batch [clips, samples] at sampleRate to one of the same shape; `first` is the batch's first clip's index */
  apply(wave: Tensor, sampleRate: number, first: number): Tensor;
}

/** x cut into segments of `length` samples (the last one shorter) put back in a seeded random order. */
export function shuffleSegments(x: Float32Array, length: number, seed: number): Float32Array {
  const starts = Array.from({ length: Math.ceil(x.length / length) }, (_, i) => i * length);
  const order = createRng(seed).shuffle([...starts]);
  const out = new Float32Array(x.length);
  let at = 0;
  for (const s of order) {
    const part = x.subarray(s, Math.min(x.length, s + length));
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** x delayed by `samples`, zeros in front, length kept. */
function delayed(x: Float32Array, samples: number): Float32Array {
  const out = new Float32Array(x.length);
  out.set(x.subarray(0, Math.max(0, x.length - samples)), samples);
  return out;
}

/**
 * The detector's perturbations (fixed before any measurement, measured/scan/fresh-zoo-PLAN.md). Seeded draws
 * (shuffles, noise) depend on the clip's index in its set and on `seed`, so a clip is perturbed the same way
 * whatever batch it is in.
 */
export function stabilityPerturbations(seed = 0): StabilityPerturbation[] {
  const rowOp = (name: string, kind: StabilityPerturbation['kind'], f: (x: Float32Array, sampleRate: number, clip: number) => Float32Array) => ({
    name,
    kind,
    apply: (wave: Tensor, sampleRate: number, first: number) => perRow((x, sr, r) => f(x, sr, first + r))(wave, sampleRate),
  });
  const ms = (n: number, sampleRate: number) => Math.max(1, Math.round((n * sampleRate) / 1000));
  const breaking: StabilityPerturbation[] = [
    rowOp('reverse', 'breaking', (x) => x.slice().reverse()),
    ...[25, 50, 100].flatMap((segment) =>
      [0, 1].map((draw) =>
        rowOp(`shuffle${segment}ms#${draw}`, 'breaking', (x, sr, clip) =>
          shuffleSegments(x, ms(segment, sr), deriveSeed(seed, 'stability-shuffle', segment, draw, clip)),
        ),
      ),
    ),
  ];
  const preserving: StabilityPerturbation[] = [
    ...[-1, 1].map((st) => ({
      name: `pitch${st > 0 ? '+' : ''}${st}`,
      kind: 'preserving' as const,
      apply: (wave: Tensor) => pitchShift(wave, st),
    })),
    rowOp('lowpass', 'preserving', (x, sr) => ladderFilter(x, sr, { mode: 'LPF12', cutoffHz: Math.min(5000, 0.4 * sr) })),
    rowOp('highpass150', 'preserving', (x, sr) => ladderFilter(x, sr, { mode: 'HPF12', cutoffHz: 150 })),
    rowOp('noise30dB', 'preserving', (x, _sr, clip) => mixAtSnr(x, whiteNoise(x.length, createRng(deriveSeed(seed, 'stability-noise', clip))), 30)),
    rowOp('delay50ms', 'preserving', (x, sr) => delayed(x, ms(50, sr))),
    rowOp('reverb0.2', 'preserving', (x, sr) => reverb(x, sr, { rt60: 0.2, wet: 0.2, seed })),
  ];
  return [...breaking, ...preserving];
}

export interface ClipStability {
  /** the model's label of the clip as given */
  predicted: number;
  /** shares of the breaking and of the preserving perturbations after which the model keeps that label */
  breakingKept: number;
  preservingKept: number;
  /** breakingKept - preservingKept: larger is more trigger-like */
  score: number;
}

/** Every clip of `waves` [clips, samples] under every perturbation: where its label stays. Eval mode, no gradients. */
export function clipStabilities(
  model: KwsModel,
  waves: Tensor,
  o: { sampleRate: number; toModelInput: (wave: Tensor) => Tensor; perturbations?: StabilityPerturbation[]; clipsPerForward?: number },
): ClipStability[] {
  const perturbations = o.perturbations ?? stabilityPerturbations();
  const kinds = ['breaking', 'preserving'] as const;
  for (const kind of kinds) if (!perturbations.some((p) => p.kind === kind)) throw new Error(`clip stability: no ${kind} perturbation`);
  const [clips] = waves.shape;
  const step = o.clipsPerForward ?? 64;
  const predict = (batch: Tensor) => tidy(() => argmax(model.forward(o.toModelInput(batch)), 1).toArray()) as number[];
  const wasTraining = model.training;
  model.eval();
  try {
    return noGrad(() => {
      const out: ClipStability[] = [];
      for (let start = 0; start < clips; start += step) {
        tidy(() => {
          const batch = waves.narrow(0, start, Math.min(step, clips - start));
          const own = predict(batch);
          const kept = { breaking: own.map(() => 0), preserving: own.map(() => 0) };
          for (const p of perturbations) {
            const labels = tidy(() => predict(p.apply(batch, o.sampleRate, start)));
            labels.forEach((l, i) => {
              if (l === own[i]) kept[p.kind][i]++;
            });
          }
          const count = (kind: (typeof kinds)[number]) => perturbations.filter((p) => p.kind === kind).length;
          own.forEach((predicted, i) => {
            const breakingKept = kept.breaking[i] / count('breaking');
            const preservingKept = kept.preserving[i] / count('preserving');
            out.push({ predicted, breakingKept, preservingKept, score: breakingKept - preservingKept });
          });
        });
      }
      return out;
    });
  } finally {
    model.train(wasTraining);
  }
}

/**
 * The score above which a clip is flagged: the (1 - falseAlarm) quantile of clean clips' scores; flagging strictly
 * above it keeps the clean clips' false alarms at most `falseAlarm` (ties fall on the clean side).
 */
export function stabilityThreshold(cleanScores: readonly number[], falseAlarm = 0.01): number {
  return quantile(cleanScores, 1 - falseAlarm);
}
