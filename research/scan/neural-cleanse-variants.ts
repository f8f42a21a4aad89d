// Neural Cleanse variants measured and not shipped (README scan section; research/scan/scan-explore.ts): the trigger
// stamped on a module's output instead of the input (feature-space Neural Cleanse), a mask per element or per channel
// (one value per feature map, shared over its positions), the pattern's range per channel or per element, and a
// second model that must keep each stamped clip's true class (the trigger is then what `model` has and `reference`
// lacks: with a purified copy as the reference, a backdoor's shortcut, which the purification removed, stays cheap
// while the adversarial shortcuts both models share do not). They run the product's optimisation
// (src/analysis/neural-cleanse.ts reverseEngineerAt) at their own TriggerSite. A trigger that transforms the whole
// clip (a filter, a pitch shift) is no small input patch, but a backdoor still needs some units of a deep layer to
// carry it.
import { type NeuralCleanseOptions, type ReversedTrigger, reverseEngineerAt, type TriggerSite } from '../../src/analysis/neural-cleanse.ts';
import type { FeatureSet } from '../../src/data/feature-set.ts';
import type { KwsModel } from '../../src/models/registry.ts';
import { type Module, withForwardHook } from '../../src/nn/index.ts';
import { crossEntropy, indexSelect, max, maximum, min, minimum, noGrad, type Tensor, tensor, tidy } from '../../src/torch/index.ts';

export interface NeuralCleanseVariant extends NeuralCleanseOptions {
  /** stamp the trigger on this module's output (a dotted name of model.namedModules()) instead of the input */
  layer?: string;
  /** one mask value per element (default), or per channel (the site's first axis), shared over positions */
  maskOver?: 'elements' | 'channels';
  /** the pattern's range: one for the site (default 'global'), per channel, or per element */
  range?: PatternRange;
  /** a second model that must keep each stamped clip's true class (input-domain stamping only) */
  reference?: KwsModel;
}

export type PatternRange = 'global' | 'per-channel' | 'per-element';

/** A tensor's minimum and maximum over clips (dim 0), reduced further over all but the kept axes. */
function rangeOf(values: Tensor, range: PatternRange): [Tensor, Tensor] {
  return tidy(() => {
    if (range === 'global') return [values.min().reshape([1]), values.max().reshape([1])];
    let lo = min(values, 0);
    let hi = max(values, 0);
    if (range === 'per-channel') {
      for (let d = lo.ndim - 1; d >= 1; d--) {
        lo = min(lo, d, true);
        hi = max(hi, d, true);
      }
    }
    return [lo.contiguous(), hi.contiguous()];
  });
}

/** The clean values at the trigger's site: the features, or the named module's outputs on them. */
function siteRange(model: KwsModel, clean: FeatureSet, module: Module | null, range: PatternRange): { shape: number[]; lo: Tensor; hi: Tensor } {
  if (!module) {
    const [lo, hi] = rangeOf(clean.features, range);
    return { shape: clean.features.shape.slice(1), lo, hi };
  }
  const outputs: Tensor[] = [];
  noGrad(() =>
    withForwardHook(
      module,
      (out) => {
        const kept = out.contiguous().clone();
        kept.persistent = true;
        outputs.push(kept);
        return undefined;
      },
      () => {
        for (let start = 0; start < clean.size; start += 64) {
          tidy(() => {
            const idx = Array.from({ length: Math.min(64, clean.size - start) }, (_, i) => BigInt(start + i));
            model.forward(indexSelect(clean.features, 0, tensor(BigInt64Array.from(idx))));
          });
        }
      },
    ),
  );
  try {
    const [lo, hi] = tidy(() => {
      const [l, h] = rangeOf(outputs[0], range);
      let lo = l;
      let hi = h;
      for (const o of outputs.slice(1)) {
        const [bl, bh] = rangeOf(o, range);
        lo = minimum(lo, bl);
        hi = maximum(hi, bh);
      }
      return [lo, hi];
    });
    return { shape: outputs[0].shape.slice(1), lo, hi };
  } finally {
    for (const o of outputs) o.dispose();
  }
}

function siteModule(model: KwsModel, name: string): Module {
  const found = model.namedModules().find(([n]) => n === name);
  if (!found)
    throw new Error(
      `Neural Cleanse: the model has no module '${name}'; its modules are ${model
        .namedModules()
        .map(([n]) => n)
        .filter(Boolean)
        .join(', ')}`,
    );
  return found[1];
}

/** The reversed trigger of every class (or of opts.labels) for a variant: its site, then the product's loop. */
export function reverseEngineerVariant(model: KwsModel, clean: FeatureSet, opts: NeuralCleanseVariant = {}): ReversedTrigger[] {
  if (opts.reference && opts.layer) throw new Error('Neural Cleanse: a reference model needs input-domain stamping (no layer)');
  const module = opts.layer ? siteModule(model, opts.layer) : null;
  const { shape, lo, hi } = siteRange(model, clean, module, opts.range ?? 'global');
  const maskShape = opts.maskOver === 'channels' ? [shape[0], ...shape.slice(1).map(() => 1)] : shape;
  const reference = opts.reference;
  const site: TriggerSite = {
    shape,
    maskShape,
    lo,
    hi,
    logits: (x, stamp) =>
      module
        ? withForwardHook(
            module,
            (out) => stamp(out),
            () => model.forward(x),
          )
        : model.forward(stamp(x)),
    extra: reference
      ? (x, stamp, indices) => {
          const truth = tensor(BigInt64Array.from(indices, (i) => BigInt(clean.labelList[i])));
          const kept = reference.forward(stamp(x));
          const keep = (kept.argmax(1).eq(truth).toArray() as (number | boolean)[]).map(Boolean);
          return { loss: crossEntropy(kept, truth, { reduction: 'sum' }).div(indices.length / (opts.labels ?? clean.classes).length), keep };
        }
      : undefined,
  };
  const referenceWasTraining = reference?.training ?? false;
  reference?.eval();
  try {
    return reverseEngineerAt(model, clean, site, opts);
  } finally {
    reference?.train(referenceWasTraining);
  }
}
