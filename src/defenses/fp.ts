// FP: Fine-Pruning (Liu, Dolan-Gavitt & Garg 2018; specs/defenses.md section 3). Rank the neurons of the
// last conv layer by their mean activation on clean data, prune the least active ones step by step
// (ceil(1%) at a time) while the clean hold-out accuracy stays within 10% (relative) of where it started,
// then fine-tune with the mask kept. Two deliberate differences from [BB] fp.py: the stopping check uses
// the defender's hold-out, never the test split, and the last acceptable mask is kept (BB's loop returns
// the mask of the step that broke the criterion). `layer=penultimate` is BackdoorBench's variant: the
// classifier's input features instead of the last conv layer's channels (models without a conv layer, LSTM
// and KWT, use it automatically).

import { batchIndices, type FeatureSet, gatherBatch } from '../data/feature-set.ts';
import { applyMask, classifierLayer, lastConvLayer, moduleAt, type NeuronMask } from '../models/neurons.ts';
import { accuracyAndLoss } from '../models/predict.ts';
import type { KwsModel } from '../models/registry.ts';
import { hookProblem } from '../models/torchscript.ts';
import { withForwardHook } from '../nn/index.ts';
import { clone, copyInPlace, dispose, keep, mean, noGrad, type Tensor, tidy } from '../torch/index.ts';
import { fineTune, plainStep } from './fine-tune.ts';
import { begin, fineTuneOptionSpecs, fineTuneSettings, finish, loopContext } from './fine-tune-frame.ts';
import { registerDefense } from './registry.ts';
import { type DefenseSpec, defineDefense } from './types.ts';

export const fpOptions = {
  ...fineTuneOptionSpecs,
  layer: {
    type: 'enum',
    default: 'last-conv',
    values: ['last-conv', 'penultimate'],
    help: "what is pruned: the last conv layer's channels (original FP) or the classifier's input features ([BB])",
  },
  maxDrop: {
    type: 'number',
    default: 0.1,
    above: 0,
    max: 1,
    help: 'stop pruning before the hold-out accuracy falls by this share of its start ([BB] acc_ratio 0.1)',
  },
  stepRatio: { type: 'number', default: 0.01, above: 0, max: 1, help: 'neurons pruned per step, as a share of the layer ([BB] once_prune_ratio 0.01)' },
} as const;

/** Mean activation of every neuron of the pruned layer over the clips (eval mode). */
function meanActivations(model: KwsModel, layer: string, kind: NeuronMask['kind'], set: FeatureSet): number[] {
  const sums: number[] = [];
  let batches = 0;
  const target = moduleAt(model, layer);
  model.eval();
  noGrad(() =>
    withForwardHook(
      target,
      (output, input) => {
        const t = kind === 'output-channels' ? output : input;
        const dims = kind === 'output-channels' ? [0, ...Array.from({ length: t.ndim - 2 }, (_, i) => i + 2)] : Array.from({ length: t.ndim - 1 }, (_, i) => i);
        const m = tidy(() => mean(t, dims).toArray());
        m.forEach((v, i) => {
          sums[i] = (sums[i] ?? 0) + v;
        });
        batches += 1;
        return undefined;
      },
      () => {
        for (const b of batchIndices(set.size, 256)) tidy(() => void model.forward(gatherBatch(set, b).x));
      },
    ),
  );
  return sums.map((s) => s / batches);
}

export const fp: DefenseSpec<typeof fpOptions> = defineDefense({
  name: 'fp',
  description: 'Fine-Pruning: prune the least active neurons of the last conv layer on clean data, then fine-tune with the mask',
  minCleanClips: 10,
  needsData: true,
  options: fpOptions,
  recipes: {
    // [BB] fp.py: its fine-tuning as FT's; pruning judged on our hold-out (BB used the test set).
    paper: { shortBatch: 'keep', batchNorm: 'train', select: 'last', holdout: 0.2 },
    default: { shortBatch: 'merge', batchNorm: 'recalibrate', select: 'last', holdout: 0.2 },
  },
  // A TorchScript model whose pruned layer no forward hook can reach (its code reads the layer's weights
  // instead of calling it) is refused, naming the layer.
  modelProblem(model, info, options) {
    // -o layer=penultimate prunes the classifier's input features: only the classifier must be reachable
    const conv = options?.layer === 'penultimate' ? null : lastConvLayer(model, info.neuronLayers);
    let layer: string;
    try {
      layer = conv ?? classifierLayer(model, info.neuronLayers);
    } catch {
      return null;
    }
    return hookProblem(
      model,
      [layer],
      conv
        ? `fp ranks the channels of the last conv layer '${conv}' by their activations on clean data (-o layer=penultimate ranks the classifier's input features instead)`
        : `fp ranks the classifier's input features by their activations on clean data`,
    );
  },
  async purify(model, clean, ctx) {
    const p = begin(fp, model, clean, ctx);
    if (!p.holdout) {
      p.dispose();
      throw new Error('fp judges pruning on a clean hold-out; set -o holdout above 0');
    }
    const holdout = p.holdout;
    try {
      const conv = p.options.layer === 'last-conv' ? lastConvLayer(model, ctx.model.neuronLayers) : null;
      const kind: NeuronMask['kind'] = conv ? 'output-channels' : 'input-features';
      const layer = conv ?? classifierLayer(model, ctx.model.neuronLayers);
      const problem = hookProblem(model, [layer], `fp ranks the neurons of '${layer}' by their activations on clean data`);
      if (problem) throw new Error(problem);
      const note = p.options.layer === 'last-conv' && !conv ? `${ctx.model.name} has no conv layer: pruned the classifier's input features instead` : undefined;
      ctx.progress?.stage?.(`ranking the neurons of ${layer} by mean activation on ${p.fit.size} clean clips`);
      const activations = meanActivations(model, layer, kind, p.fit);
      const order = activations
        .map((a, i) => [a, i] as const)
        .sort((x, y) => x[0] - y[0] || x[1] - y[1])
        .map(([, i]) => i);
      const size = order.length;
      const target = moduleAt(model, layer) as KwsModel & { weight: Tensor; bias?: Tensor | null };
      const original = noGrad(() => ({ weight: keep(clone(target.weight)), bias: target.bias ? keep(clone(target.bias)) : null }));
      const restore = () =>
        noGrad(() => {
          copyInPlace(target.weight, original.weight);
          if (target.bias && original.bias) copyInPlace(target.bias, original.bias);
        });
      const start = accuracyAndLoss(model, holdout).accuracy;
      const floor = (1 - p.options.maxDrop) * start;
      const step = Math.max(1, Math.ceil(p.options.stepRatio * size));
      let accepted: NeuronMask = { layer, kind, size, pruned: [] };
      const trail: { pruned: number; holdoutAccuracy: number }[] = [];
      try {
        for (let n = step; n < size; n += step) {
          const mask: NeuronMask = { layer, kind, size, pruned: order.slice(0, n) };
          restore();
          applyMask(model, mask);
          const acc = accuracyAndLoss(model, holdout).accuracy;
          trail.push({ pruned: n, holdoutAccuracy: acc });
          ctx.progress?.step?.('pruning', n, size, `hold-out ${(100 * acc).toFixed(1)}%`);
          if (acc < floor) break;
          accepted = mask;
        }
        restore();
      } finally {
        dispose([original.weight, original.bias]);
      }
      applyMask(model, accepted);
      ctx.progress?.stage?.(`pruned ${accepted.pruned.length} of ${size} neurons of ${layer}; fine-tuning with the mask kept`);
      const result = await fineTune(model, p.fit, holdout, {
        phase: 'fp',
        settings: fineTuneSettings(p.options),
        step: plainStep(p.options.clipNorm),
        afterStep: () => applyMask(model, accepted),
        ...loopContext(ctx),
      });
      applyMask(model, accepted);
      return finish(fp, model, clean, p, result.epochs, {
        layer,
        kind,
        neurons: size,
        pruned: accepted.pruned,
        holdoutBeforePruning: start,
        trail,
        chosenEpoch: result.chosenEpoch,
        ...(note ? { note } : {}),
      });
    } finally {
      p.dispose();
    }
  },
});

registerDefense(fp);
