// Scores of a model from the model and clean clips only (no trigger, no attack run, no reference): trigger
// reverse-engineering (Neural Cleanse, neural-cleanse.ts: the MAD anomaly index of the smallest reversed mask and its
// class) and the gradient-norm signature (gradient-signature.ts, the GN-FT paper's observation). Neither is
// calibrated here: on the measured zoo Neural Cleanse's own rule (backdoored above 2, Wang et al. 2019) was right on
// 38% of the models (README, scan section), so these are scores, never a verdict. A verdict needs clean references
// (probe-bank.ts).
import { disposeFeatureSet, type FeatureSet, subsetOf } from '../data/feature-set.ts';
import { createRng } from '../data/rng.ts';
import type { KwsModel } from '../models/registry.ts';
import { type GradientSignature, gradientSignature } from './gradient-signature.ts';
import { neuronGradients } from './gradients.ts';
import { anomalyIndices, type NeuralCleanseOptions, reverseEngineerTriggers } from './neural-cleanse.ts';
import { defaultAnalysisLayers } from './neuron-layers.ts';

export interface ScanOptions {
  /** layers of the gradient signature (default: the last two conv neuron layers, see defaultAnalysisLayers) */
  layers?: string[];
  /** clean clips Neural Cleanse draws from (default 200, class-balanced by seed) */
  clips?: number;
  neuralCleanse?: NeuralCleanseOptions;
  seed?: number;
  onStage?: (stage: string) => void;
  onProgress?: (done: number, total: number) => void;
}

export interface ScanClass {
  class: string;
  label: number;
  /** share of the clip the reversed trigger overwrites */
  maskL1: number;
  /** attack success of the reversed trigger on its batch */
  success: number;
  reached: boolean;
  anomalyIndex: number;
}

export interface ScanResult {
  /** the anomaly index of the smallest reversed mask (Neural Cleanse flags above 2; not calibrated here) */
  anomalyIndex: number;
  /** the class with the smallest reversed mask */
  smallestMask: string;
  smallestMaskLabel: number;
  perClass: ScanClass[];
  neuralCleanse: { steps: number; batchSize: number; clips: number; median: number; mad: number };
  gradientSignature: GradientSignature;
  clips: number;
  seconds: { neuralCleanse: number; gradients: number };
}

/**
 * Neural Cleanse's budget for a model input kind, for minutes per model on 2 cores (measured under load:
 * a ResNet forward+backward ~10 ms per MFCC clip, EAT ~230 ms per waveform): spectral models 150 steps of
 * 8 clips per class; raw-waveform models 50 steps of 2, so their masks are less converged.
 */
export function neuralCleanseBudget(inputKind: 'spectral' | 'waveform'): { steps: number; batchSize: number } {
  return inputKind === 'waveform' ? { steps: 50, batchSize: 2 } : { steps: 150, batchSize: 8 };
}

/** Up to `count` clips, as evenly over the classes as they allow, chosen by seed. */
export function balancedSubset(labels: readonly number[], count: number, seed: number): number[] {
  if (count >= labels.length) return labels.map((_, i) => i);
  const rng = createRng(`${seed}:subset`);
  const byClass = new Map<number, number[]>();
  labels.forEach((l, i) => byClass.set(l, [...(byClass.get(l) ?? []), i]));
  const queues = [...byClass.keys()].sort((a, b) => a - b).map((l) => rng.shuffle([...(byClass.get(l) as number[])]));
  const chosen: number[] = [];
  for (let round = 0; chosen.length < count; round++) {
    for (const q of queues) if (round < q.length && chosen.length < count) chosen.push(q[round]);
  }
  return chosen.sort((a, b) => a - b);
}

export function scanModel(
  model: KwsModel,
  info: { neuronLayers: readonly string[]; inputKind: 'spectral' | 'waveform' },
  clean: FeatureSet,
  opts: ScanOptions = {},
): ScanResult {
  const seed = opts.seed ?? 0;
  const layers = opts.layers ?? defaultAnalysisLayers(model, info.neuronLayers);
  const budget = { ...neuralCleanseBudget(info.inputKind), ...opts.neuralCleanse };
  const gradientsStart = Date.now();
  opts.onStage?.(`gradient norms on ${clean.size} clean clips (${layers.join(', ')})`);
  const signature = gradientSignature(model, neuronGradients(model, layers, clean));
  const gradientSeconds = (Date.now() - gradientsStart) / 1000;
  const subset = subsetOf(clean, balancedSubset(clean.labelList, opts.clips ?? 200, seed));
  const ncStart = Date.now();
  try {
    opts.onStage?.(`reverse-engineering a trigger for each of ${clean.classes.length} classes (${budget.steps} steps of ${budget.batchSize} clips per class)`);
    const reversed = reverseEngineerTriggers(model, subset, { ...budget, seed, onProgress: opts.onProgress });
    const { indices, median, mad } = anomalyIndices(reversed.map((r) => r.maskL1));
    let suspect = 0;
    reversed.forEach((r, i) => {
      if (r.maskL1 < reversed[suspect].maskL1) suspect = i;
    });
    return {
      anomalyIndex: indices[suspect],
      smallestMask: reversed[suspect].class,
      smallestMaskLabel: reversed[suspect].label,
      perClass: reversed.map((r, i) => ({
        class: r.class,
        label: r.label,
        maskL1: r.maskL1,
        success: r.success,
        reached: r.reached,
        anomalyIndex: indices[i],
      })),
      neuralCleanse: { steps: budget.steps, batchSize: budget.batchSize, clips: subset.size, median, mad },
      gradientSignature: signature,
      clips: clean.size,
      seconds: { neuralCleanse: (Date.now() - ncStart) / 1000, gradients: gradientSeconds },
    };
  } finally {
    disposeFeatureSet(subset);
  }
}
