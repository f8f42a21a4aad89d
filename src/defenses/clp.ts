// CLP: channel Lipschitzness-based pruning (Zheng et al., ECCV'22; specs/defenses.md section 6; [BB]
// defense/clp.py), data-free. For every convolution followed by a BatchNorm and every output channel k,
// UCLC_k = sigma_max(W_k) * |gamma_k / sigma_k|, the spectral norm of the channel's kernel reshaped to
// [in, kernel elements] times the BatchNorm's scale over its running standard deviation: an upper bound on
// the Lipschitz constant of channel k. Within each BatchNorm, channels with UCLC_k > mean + u * std
// (u = 3; std over that layer's channels, unbiased as torch.std) get gamma_k = beta_k = 0.
//
// Pairing convolutions with BatchNorms (a deliberate choice): [BB] pairs each BatchNorm with the last Conv2d
// before it in module order, assuming every BN directly follows a conv. Here the order is the order the
// layers actually run in: one forward of two all-zero clips (the clean set is empty, but its feature shape is
// known) in eval mode, without gradients, with every conv and BatchNorm logged as it runs. A BatchNorm is
// paired with the conv that ran last before it when that conv's output channels equal the BatchNorm's
// features and no other BatchNorm ran in between; 'direct' says whether the BatchNorm read that conv's
// output tensor itself. Indirect pairs are channel-wise activations in between (Small CNN's conv -> ReLU ->
// BN): a 1-Lipschitz per-channel map there leaves UCLC an upper bound, so they are pruned the same way.
// BatchNorms without such a conv (none in the five families) are left alone and listed in the report.
//
// sigma_k is sqrt(running_var) without BatchNorm's eps, as [BB] computes it.

import { isConv } from '../models/neurons.ts';
import { hookProblem } from '../models/torchscript.ts';
import type { AnyBatchNorm } from '../nn/index.ts';
import { Conv1d, Conv2d, isBatchNorm, type Module, withForwardHook } from '../nn/index.ts';
import { abs, div, mul, mulInPlace, noGrad, sqrt, svd, type Tensor, tensor, tidy, zeros } from '../torch/index.ts';
import { begin, finish } from './fine-tune-frame.ts';
import { registerDefense } from './registry.ts';
import { type DefenseSpec, defineDefense } from './types.ts';

export interface ConvBatchNormPair {
  conv: string;
  batchNorm: string;
  /** the BatchNorm read the conv's output tensor itself (false: a channel-wise op ran in between) */
  direct: boolean;
}

/** Conv -> BatchNorm pairs in the order the layers run, from one no-gradient eval forward of `input`. */
export function convBatchNormPairs(model: Module & { forward(x: Tensor): Tensor }, input: Tensor): { pairs: ConvBatchNormPair[]; unpaired: string[] } {
  const named = model.namedModules().filter(([, m]) => isConv(m) || isBatchNorm(m));
  const trace: { name: string; kind: 'conv' | 'bn'; channels: number; input: Tensor; output: Tensor }[] = [];
  const saved = model.modules().map((m) => m.training);
  model.eval();
  try {
    noGrad(() =>
      tidy(() => {
        // Nest one hook per layer around the forward.
        const run = named.reduceRight<() => void>(
          (inner, [name, m]) =>
            () =>
              withForwardHook(
                m,
                (output, inp) => {
                  const kind = isConv(m) ? 'conv' : 'bn';
                  const channels = isConv(m) ? (m as Conv1d | Conv2d).outChannels : (m as AnyBatchNorm).numFeatures;
                  trace.push({ name, kind, channels, input: inp, output });
                  return undefined;
                },
                inner,
              ),
          () => void model.forward(input),
        );
        run();
        // Handles of the traced tensors may be released by now; only their identities are compared.
      }),
    );
  } finally {
    model.modules().forEach((m, i) => {
      m.training = saved[i];
    });
  }
  const pairs: ConvBatchNormPair[] = [];
  const unpaired: string[] = [];
  trace.forEach((entry, i) => {
    if (entry.kind !== 'bn') return;
    // the conv or BatchNorm that finished last before this one
    const before = i > 0 ? trace[i - 1] : null;
    if (before && before.kind === 'conv' && before.channels === entry.channels) {
      pairs.push({ conv: before.name, batchNorm: entry.name, direct: before.output === entry.input });
    } else unpaired.push(entry.name);
  });
  return { pairs, unpaired };
}

/** UCLC of every output channel of `conv` scaled by `bn`: sigma_max(W_k reshaped [in, kernel]) * |gamma_k / sqrt(var_k)|. */
export function channelLipschitz(conv: Conv1d | Conv2d, bn: AnyBatchNorm): number[] {
  return noGrad(() =>
    tidy(() => {
      const w = conv.weight;
      const kernels = w.reshape([w.size(0), w.size(1), -1]);
      const sigma = svd(kernels).S.max(1);
      return mul(sigma, abs(div(bn.weight, sqrt(bn.running_var)))).toArray();
    }),
  );
}

export const clpOptions = {
  u: { type: 'number', default: 3, min: 0, help: 'prune channels with UCLC > mean + u * std within their layer ([BB] clp config u: 3)' },
} as const;

export const clp: DefenseSpec<typeof clpOptions> = defineDefense({
  name: 'clp',
  description: 'CLP: data-free pruning of conv channels whose Lipschitz upper bound is an outlier in their layer (Zheng et al.)',
  minCleanClips: 0,
  needsData: false,
  options: clpOptions,
  recipes: {
    paper: { u: 3 },
    // The paper's threshold: with no data there is nothing to tune it on.
    default: { u: 3 },
  },
  modelProblem(model, info) {
    const modules = model.modules();
    const hasBn = modules.some(isBatchNorm);
    const hasConv = modules.some((m) => m instanceof Conv1d || m instanceof Conv2d);
    if (hasBn && hasConv) {
      const layers = model
        .namedModules()
        .filter(([, m]) => isConv(m) || isBatchNorm(m))
        .map(([n]) => n);
      return hookProblem(model, layers, 'clp pairs each convolution with the BatchNorm that reads its output by watching the layers run');
    }
    return `clp prunes the channels of convolutions followed by BatchNorm (Conv->BN pairs); model '${info.name}' has ${hasConv ? 'no BatchNorm layer' : hasBn ? 'no convolution' : 'neither convolutions nor BatchNorm layers'}`;
  },
  async purify(model, clean, ctx) {
    const p = begin(clp, model, clean, ctx);
    try {
      const u = p.options.u;
      const clipShape = clean.features.shape.slice(1);
      const probe = zeros([2, ...clipShape], { dtype: clean.features.dtype });
      const { pairs, unpaired } = (() => {
        try {
          return convBatchNormPairs(model, probe);
        } finally {
          probe.dispose();
        }
      })();
      if (!pairs.length) throw new Error(`clp: no convolution of '${ctx.model.name}' feeds a BatchNorm; there is nothing to prune`);
      const layers = pairs.map((pair, i) => {
        ctx.progress?.step?.('clp', i + 1, pairs.length, pair.batchNorm);
        const conv = model.namedModules().find(([n]) => n === pair.conv)?.[1] as Conv1d | Conv2d;
        const bn = model.namedModules().find(([n]) => n === pair.batchNorm)?.[1] as AnyBatchNorm;
        const uclc = channelLipschitz(conv, bn);
        const meanValue = uclc.reduce((a, b) => a + b, 0) / uclc.length;
        const std = uclc.length > 1 ? Math.sqrt(uclc.reduce((a, b) => a + (b - meanValue) ** 2, 0) / (uclc.length - 1)) : 0;
        const threshold = meanValue + u * std;
        const pruned = uclc.flatMap((v, k) => (v > threshold ? [k] : []));
        if (pruned.length) {
          const keepMask = new Float32Array(uclc.length).fill(1);
          for (const k of pruned) keepMask[k] = 0;
          noGrad(() =>
            tidy(() => {
              const m = tensor(keepMask).to(bn.weight.dtype);
              mulInPlace(bn.weight, m);
              mulInPlace(bn.bias, m);
            }),
          );
        }
        return { ...pair, channels: uclc.length, threshold, pruned, uclc };
      });
      const total = layers.reduce((n, l) => n + l.pruned.length, 0);
      ctx.progress?.stage?.(`pruned ${total} channels in ${layers.filter((l) => l.pruned.length).length} of ${layers.length} Conv->BN pairs`);
      return finish(clp, model, clean, p, [], { u, prunedChannels: total, layers, unpairedBatchNorms: unpaired });
    } finally {
      p.dispose();
    }
  },
});

registerDefense(clp);
