// NFT: augmented neural (mask) fine-tuning (Karim et al., ../shared/papers/nft-augmented-neural-fine-tuning-summary.txt;
// specs/defenses.md section 4; [NFT] src/Remove_Backdoor.py, src/networks/mask_filter.py). One mask per channel
// of every BatchNorm (of every LayerNorm for models without BatchNorm, e.g. KWT), initialised to 1, multiplies
// the layer's scale, y = norm(x; gamma*m, beta); the masks are the only trained tensors. The loss is MixUp
// cross-entropy (lambda ~ Beta(1,1)) plus 0.001 * sum |1 - m| / N_c, and after every step the masks of the
// l-th layer are clamped to [0.8 e^(-0.5 l), 1]. At the end the masks are folded into the scales (gamma <-
// gamma*m), so the purified model is an ordinary model of the same architecture.
//
// How masking works without touching the layer classes: each mask is attached to its norm module as a
// temporary parameter (`<layer>.nft_mask`), so the shared fine-tuning loop trains it, checkpoints it and
// restores it on resume or hold-out selection like any weight; every other parameter is frozen. While the
// loop runs, each norm module's forward is shadowed by one that swaps in the effective scale gamma*m for the
// duration of the call and then calls the class's own forward (withNormReparam): gamma itself is never
// written until the fold, and the layer keeps its BatchNorm statistics logic.
//
// BatchNorm running statistics (a deliberate choice): the release trains in train() mode, so the MixUp
// batches (mixtures of two clips, with less variance than real clips) overwrite the running statistics the
// backdoored model learnt on its whole training set; those statistics are then what the purified model uses
// on clean and triggered clips alike. The default recipe keeps BatchNorm in eval mode while the masks train
// (`batchNorm=frozen`): the masks are learnt against the normalisation the model is deployed with, and NFT
// changes nothing but the masks. The paper recipe keeps the release's train mode.
//
// MixUp is the shared loop's (fine-tune.ts `mixup`: lambda ~ Beta(1, 1) = Uniform(0, 1), the batch blended with
// a shuffled copy of itself, lambda CE(f(x~), y) + (1 - lambda) CE(f(x~), y[pi]), seeded per epoch), as [NFT]
// Remove_Backdoor.py mixes; the step adds the mask regulariser to that loss.

import { type AnyBatchNorm, isBatchNorm, LayerNorm, type Module, parameter, withForwards } from '../nn/index.ts';
import { abs, add, backward, clampInPlace, dispose, mul, mulInPlace, noGrad, ones, sum, type Tensor, tidy } from '../torch/index.ts';
import { fineTune, type StepFn } from './fine-tune.ts';
import { begin, fineTuneOptionSpecs, fineTuneSettings, finish, loopContext } from './fine-tune-frame.ts';
import { registerDefense } from './registry.ts';
import { type DefenseSpec, defineDefense, type ModelInfo } from './types.ts';

// ---------------------------------------------------------------------------------------------------------
// Norm-layer masks, shared with ANP (anp.ts).

/** A normalisation layer whose per-channel scale a defense masks. */
export interface NormLayer {
  /** module path, e.g. 'layer1.0.bn1' */
  name: string;
  module: AnyBatchNorm | LayerNorm;
  kind: 'batch-norm' | 'layer-norm';
  /** channels (BatchNorm features, LayerNorm's normalised elements) */
  channels: number;
}

/**
 * The layers NFT and ANP mask, in module (definition) order: every BatchNorm, shortcut BatchNorms included
 * ([NFT] Masked_BN2d, [BB] anp_batchnorm); for a model without any BatchNorm, every LayerNorm instead (KWT).
 * A model with both (EAT) has its BatchNorms masked, as the sources do.
 */
export function maskableNorms(model: Module): NormLayer[] {
  const named = model.namedModules();
  const batch = named.filter(([, m]) => isBatchNorm(m));
  if (batch.length) return batch.map(([name, m]) => ({ name, module: m as AnyBatchNorm, kind: 'batch-norm', channels: (m as AnyBatchNorm).numFeatures }));
  return named
    .filter(([, m]) => m instanceof LayerNorm)
    .map(([name, m]) => ({ name, module: m as LayerNorm, kind: 'layer-norm', channels: (m as LayerNorm).weight.numel }));
}

/** Why `defense` cannot mask `info.name`'s norm layers, or null. */
export function normLayerProblem(defense: string, model: Module, info: ModelInfo): string | null {
  if (maskableNorms(model).length) return null;
  return `${defense} masks the per-channel scales of BatchNorm layers (LayerNorm layers in models without BatchNorm); model '${info.name}' has neither`;
}

type Effective = { weight?: Tensor; bias?: Tensor };

/**
 * Runs fn with the forward of every layer in `layers` computing with `effective(i)`'s weight and/or bias in
 * place of the layer's own for that call (each layer's class forward is reused; the fields are swapped back
 * before the call returns, so state dicts, checkpoints and the original tensors never see the effective
 * ones). The effective tensors are made and freed within each call (autograd keeps what backward needs).
 */
export function withNormReparam<T>(layers: readonly NormLayer[], effective: (i: number) => Effective, fn: () => T): T {
  return withForwards(
    layers.map((layer) => layer.module),
    (forward, i) => (x: Tensor) =>
      tidy(() => {
        const m = layers[i].module as unknown as { weight: Tensor; bias: Tensor };
        const e = effective(i);
        const saved = { weight: m.weight, bias: m.bias };
        if (e.weight) m.weight = e.weight;
        if (e.bias) m.bias = e.bias;
        try {
          return forward(x);
        } finally {
          m.weight = saved.weight;
          m.bias = saved.bias;
        }
      }),
    fn,
  );
}

/** Sets requiresGrad = false on every parameter of `model`; returns the function that restores the flags. */
export function freezeParameters(model: Module): () => void {
  const params = model.parameters();
  const flags = params.map((p) => p.requiresGrad);
  for (const p of params) p.requiresGrad = false;
  return () =>
    params.forEach((p, i) => {
      p.requiresGrad = flags[i];
    });
}

// ---------------------------------------------------------------------------------------------------------
// NFT.

const maskField = 'nft_mask';

/** The clamp floor of the l-th masked layer (0-based index), mu_l = alpha e^(-beta (index + 1)) ([NFT]: alpha 0.8, beta 0.5). */
export const maskFloor = (index: number, alpha: number, beta: number): number => alpha * Math.exp(-beta * (index + 1));

const { clipNorm: _clipNorm, optimizer: _optimizer, ...nftFineTuneOptions } = fineTuneOptionSpecs;

export const nftOptions = {
  ...nftFineTuneOptions,
  epochs: {
    ...fineTuneOptionSpecs.epochs,
    default: 160,
    help: 'passes over the fit clips ([NFT] Remove_Backdoor.py: 1000 steps of 128 drawn from 500 images, about 256 passes)',
  },
  batchSize: { ...fineTuneOptionSpecs.batchSize, default: 128, help: 'batch size ([NFT]: 128)' },
  lr: { ...fineTuneOptionSpecs.lr, default: 0.05, help: 'learning rate of the masks ([NFT]: 0.05)' },
  momentum: { ...fineTuneOptionSpecs.momentum, default: 0.95, help: 'SGD momentum of the masks ([NFT]: 0.95)' },
  weightDecay: { ...fineTuneOptionSpecs.weightDecay, default: 0, help: 'weight decay on the masks ([NFT]: none)' },
  batchNorm: {
    ...fineTuneOptionSpecs.batchNorm,
    default: 'frozen',
    help: "BatchNorm while the masks train: 'frozen' (eval mode: running statistics used and kept), 'train' ([NFT]: the MixUp batches update them) or 'recalibrate'",
  },
  mixup: { ...fineTuneOptionSpecs.mixup, default: true, help: 'MixUp with lambda ~ Beta(1, 1) on every batch ([NFT]: on)' },
  regularization: {
    type: 'number',
    default: 0.001,
    min: 0,
    help: 'weight of the mask regulariser sum |1 - m| / N_c, N_c = fit clips per class ([NFT]: 0.001)',
  },
  floorAlpha: { type: 'number', default: 0.8, min: 0, max: 1, help: 'mask floor mu_l = floorAlpha e^(-floorBeta l), l = 1, 2, ... ([NFT]: 0.8)' },
  floorBeta: { type: 'number', default: 0.5, min: 0, help: 'decay of the mask floor over the layers ([NFT]: 0.5)' },
} as const;

/** One NFT step: the loop's (MixUp) loss plus the mask regulariser, backward into the masks, optimizer step. */
function maskStep(regularizer: () => Tensor): StepFn {
  return (optimizer, lossFn) => {
    optimizer.zeroGrad();
    const loss = tidy(() => {
      const total = add(lossFn(), regularizer());
      backward(total);
      return total.item();
    });
    optimizer.step();
    return loss;
  };
}

interface MaskSummary {
  layer: string;
  kind: NormLayer['kind'];
  floor: number;
  mean: number;
  min: number;
  /** channels whose mask ended below 0.5 */
  below: number;
  values: number[];
}

export const nft: DefenseSpec<typeof nftOptions> = defineDefense({
  name: 'nft',
  description: 'NFT: MixUp-trained per-channel masks on BatchNorm (or LayerNorm) scales, folded into the weights (Karim et al.)',
  minCleanClips: 10,
  needsData: true,
  options: nftOptions,
  recipes: {
    // [NFT] as released: train-mode BatchNorm, every clean clip trained on, the last step kept. Its cosine
    // schedule (T_max 5 "epochs", eta_min 0.02) is approximated by the loop's cosine to 0 over all epochs.
    paper: { epochs: 256, batchNorm: 'train', shortBatch: 'keep', select: 'last', holdout: 0 },
    // The project's: BatchNorm statistics kept (see the file comment) and the loop's batching policy; 160
    // passes are about the release's 1000 mask updates at the default 5% clean ratio of SCD-10 (~740 fit
    // clips, 6 batches of 128 a pass). The hold-out only reports (NFT makes no choice on it).
    default: { epochs: 160, batchNorm: 'frozen', shortBatch: 'merge', select: 'last', holdout: 0.2 },
  },
  modelProblem: (model, info) => normLayerProblem('nft', model, info),
  async purify(model, clean, ctx) {
    const p = begin(nft, model, clean, ctx);
    const norms = maskableNorms(model);
    const masks: Tensor[] = [];
    let unfreeze = () => {};
    try {
      unfreeze = freezeParameters(model);
      for (const n of norms) {
        const mask = parameter(ones([n.channels], { dtype: n.module.weight.dtype }));
        (n.module as unknown as Record<string, Tensor>)[maskField] = mask;
        masks.push(mask);
      }
      const o = p.options;
      const floors = norms.map((_, l) => maskFloor(l, o.floorAlpha, o.floorBeta));
      const perClass = p.fit.size / clean.classes.length;
      const weight = o.regularization / perClass;
      const regularizer = () =>
        mul(
          masks.map((m) => sum(abs(add(m, -1)))).reduce((a, b) => add(a, b)),
          weight,
        );
      const clampMasks = () => noGrad(() => masks.forEach((m, l) => clampInPlace(m, floors[l], 1)));
      const settings = fineTuneSettings({ ...o, optimizer: 'sgd' });
      ctx.progress?.stage?.(`training ${masks.reduce((n, m) => n + m.numel, 0)} masks on ${norms.length} ${norms[0].kind} layers`);
      const result = await withNormReparam(
        norms,
        (i) => ({ weight: mul(norms[i].module.weight, masks[i]) }),
        () =>
          fineTune(model, p.fit, p.holdout, {
            phase: 'nft',
            settings,
            step: maskStep(regularizer),
            afterStep: clampMasks,
            ...loopContext(ctx),
          }),
      );
      const summaries: MaskSummary[] = norms.map((n, l) => {
        const values = masks[l].toArray();
        return {
          layer: n.name,
          kind: n.kind,
          floor: floors[l],
          mean: values.reduce((a, b) => a + b, 0) / values.length,
          min: Math.min(...values),
          below: values.filter((v) => v < 0.5).length,
          values,
        };
      });
      // The fold: gamma <- gamma * m, the same product the masked forward computed.
      noGrad(() => norms.forEach((n, l) => mulInPlace(n.module.weight, masks[l])));
      return finish(nft, model, clean, p, result.epochs, { chosenEpoch: result.chosenEpoch, steps: result.steps, masks: summaries });
    } finally {
      for (const n of norms) delete (n.module as unknown as Record<string, Tensor>)[maskField];
      dispose(masks);
      unfreeze();
      p.dispose();
    }
  },
});

registerDefense(nft);
