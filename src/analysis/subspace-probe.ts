// The classifier-row subspace probe, for triggers that are patches in the model's input features (Audio BadNets
// writes a block into the MFCC): a backdoor teaches the classifier a direction that clean data does not span. For
// each class c, the share of the classifier's weight row w_c that lies outside the principal subspace holding 95% of
// the variance of the clean clips' penultimate features: ||w_c - P w_c|| / ||w_c||. A backdoor's target row points
// partly along the trigger's feature, outside that subspace.
//
// Alone, the share does not separate models (clean ResNets have their own large rows); against clean references it
// names BadNets' target: on the committed rows of three zoos (measured/scan/fresh-zoo-PLAN.md, "the choice of (c)")
// the excess over the references fired for 6 of 7 BadNets models and named the target in 7 of 7. The score is
// therefore the transform probe's construction: the largest per-class excess over the references' share.
import type { KwsModel } from '../models/registry.ts';
import { Linear, withForwardHook } from '../nn/index.ts';
import { cat, matmul, noGrad, type Tensor, tidy } from '../torch/index.ts';
import { pca } from './pca.ts';
import type { ProbeClips, ProbeFamily } from './probe-bank.ts';

/** What the probe measured on one model: per class, the share of its classifier row outside the clean subspace. */
export interface SubspaceResiduals {
  classes: string[];
  residuals: number[];
  /** principal axes kept for 95% of the penultimate features' variance, and the features' dimension */
  axes: number;
  dimension: number;
}

/** The model's last Linear module (its classifier), or undefined. */
function classifierOf(model: KwsModel): Linear | undefined {
  const linears = model.namedModules().filter(([, m]) => m instanceof Linear);
  return linears.length ? (linears[linears.length - 1][1] as Linear) : undefined;
}

export function subspaceRefusal(model: KwsModel): string | undefined {
  return classifierOf(model) ? undefined : 'the model has no Linear classifier layer to read rows from';
}

/** The classifier's inputs [clips, D] on the clean clips, eval mode, no gradients. */
function penultimateOf(model: KwsModel, classifier: Linear, clips: ProbeClips, clipsPerForward = 64): Tensor {
  const parts: Tensor[] = [];
  const wasTraining = model.training;
  model.eval();
  try {
    noGrad(() =>
      withForwardHook(
        classifier,
        (_out, input) => {
          const kept = input.flatten(1).contiguous().clone();
          kept.persistent = true;
          parts.push(kept);
          return undefined;
        },
        () => {
          const [n] = clips.waves.shape;
          for (let start = 0; start < n; start += clipsPerForward) {
            tidy(() => {
              model.forward(clips.toModelInput(clips.waves.narrow(0, start, Math.min(clipsPerForward, n - start))));
            });
          }
        },
      ),
    );
    return tidy(() => cat(parts, 0));
  } finally {
    for (const p of parts) p.dispose();
    model.train(wasTraining);
  }
}

/** Each class row's share outside the subspace of `explained` (default 0.95) of the clean penultimate variance. */
export function subspaceResiduals(model: KwsModel, clips: ProbeClips, explained = 0.95): SubspaceResiduals {
  const classifier = classifierOf(model);
  if (!classifier) throw new Error(`subspace probe: ${subspaceRefusal(model)}`);
  const features = penultimateOf(model, classifier, clips);
  try {
    return noGrad(() =>
      tidy(() => {
        const dimension = features.shape[1];
        const { axes, explained: shares } = pca(features, dimension);
        let k = 0;
        for (let sum = 0; k < shares.length && sum < explained; k++) sum += shares[k];
        const basis = axes.narrow(1, 0, k).to('float32');
        const w = classifier.weight;
        if (w.shape[0] !== clips.classes.length) {
          throw new Error(`subspace probe: the classifier has ${w.shape[0]} rows, the clips ${clips.classes.length} classes`);
        }
        const inside = matmul(matmul(w, basis), basis.transpose(0, 1));
        const residuals = w.sub(inside).norm(2, 1).div(w.norm(2, 1)).toArray() as number[];
        return { classes: [...clips.classes], residuals, axes: k, dimension };
      }),
    );
  } finally {
    features.dispose();
  }
}

/** The subject's largest per-class excess over the references' largest share, and its class. */
export function residualExcess(subject: SubspaceResiduals, references: readonly SubspaceResiduals[]): { score: number; class: string } {
  if (references.length === 0) throw new Error('subspace probe: the excess needs at least one clean reference');
  for (const r of references) {
    if (r.classes.join() !== subject.classes.join())
      throw new Error(`subspace probe: a reference has classes ${r.classes.join(',')}, the model ${subject.classes.join(',')}`);
  }
  let best = { score: Number.NEGATIVE_INFINITY, class: '' };
  subject.residuals.forEach((v, c) => {
    const e = v - Math.max(...references.map((r) => r.residuals[c]));
    if (e > best.score) best = { score: e, class: subject.classes[c] };
  });
  return best;
}

/** The subspace probe as a probe family (probe-bank.ts); it refuses a model without a Linear classifier. */
export function subspaceFamily(): ProbeFamily<SubspaceResiduals> {
  return {
    name: 'subspace',
    probes: "each class's classifier row outside the 95%-variance subspace of the penultimate features of clean clips",
    refuses: subspaceRefusal,
    measure: (model, clips) => subspaceResiduals(model, clips),
    score: (subject, others) => {
      const e = residualExcess(subject, others);
      return { score: e.score, target: e.class, detail: "classifier row outside the clean clips' subspace" };
    },
  };
}
