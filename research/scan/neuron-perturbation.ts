// Where do clean clips go when the model's neurons are adversarially perturbed? ANP's observation (Wu & Wang,
// NeurIPS 2021, Fig. 1): under a small adversarial perturbation of its neurons, a backdoored model sends clean
// inputs to the backdoor's target class, since the backdoor is the most fragile route, the one a few neurons
// carry; a clean model's errors spread over the classes. As a scan: one perturbation shared by all of the
// defender's clips (so it must find a route for every word, as a trigger does), found by signed gradient
// ascent on their cross-entropy, and the share of clips of other classes each class receives.
//
// The perturbation is ANP's: every normalisation channel's scale and shift multiplied by (1 + delta) and
// (1 + xi), |delta|, |xi| <= eps (defenses/nft.ts maskableNorms and withNormReparam, the layers ANP and NFT
// mask). Choices: BatchNorm in eval mode (its running statistics, so the answer does not depend on how the
// clips are batched), the noises starting at 0 and `steps` signed steps of eps / 4, all clips in one batch.
import type { FeatureSet } from '../../src/data/feature-set.ts';
import { maskableNorms, withNormReparam } from '../../src/defenses/nft.ts';
import type { KwsModel } from '../../src/models/registry.ts';
import { parameter } from '../../src/nn/index.ts';
import { add, addInPlace, clampInPlace, crossEntropy, dispose, grad, mul, noGrad, sign, type Tensor, tidy, zeros } from '../../src/torch/index.ts';

export interface NeuronPerturbationOptions {
  /** the noise bound (ANP's default 0.4) */
  eps?: number;
  /** signed ascent steps (default 10) */
  steps?: number;
}

export interface PerturbedPredictions {
  eps: number;
  /** accuracy on the clips under the perturbation */
  accuracy: number;
  /** per class t: the share of clips of the other classes predicted t under the perturbation */
  received: number[];
}

export function perturbedPredictions(model: KwsModel, clean: FeatureSet, opts: NeuronPerturbationOptions = {}): PerturbedPredictions {
  const eps = opts.eps ?? 0.4;
  const steps = opts.steps ?? 10;
  const norms = maskableNorms(model);
  if (norms.length === 0) throw new Error('neuron perturbation: the model has no BatchNorm or LayerNorm channels to perturb');
  const noises = norms.flatMap((n) => [0, 1].map(() => parameter(zeros([n.channels], { dtype: n.module.weight.dtype }))));
  const wasTraining = model.training;
  model.eval();
  try {
    const predicted = withNormReparam(
      norms,
      (i) => ({ weight: mul(norms[i].module.weight, add(noises[2 * i], 1)), bias: mul(norms[i].module.bias, add(noises[2 * i + 1], 1)) }),
      () => {
        for (let s = 0; s < steps; s++) {
          tidy(() => {
            const g = grad(crossEntropy(model.forward(clean.features), clean.labels), noises) as Tensor[];
            noGrad(() =>
              noises.forEach((t, k) => {
                addInPlace(t, sign(g[k]), eps / 4);
                clampInPlace(t, -eps, eps);
              }),
            );
          });
        }
        return noGrad(() => tidy(() => model.forward(clean.features).argmax(1).toArray()));
      },
    );
    const k = clean.classes.length;
    const labels = clean.labelList;
    const received = Array.from({ length: k }, (_, t) => {
      const others = labels.flatMap((l, i) => (l === t ? [] : [i]));
      return others.filter((i) => predicted[i] === t).length / Math.max(1, others.length);
    });
    const accuracy = labels.filter((l, i) => predicted[i] === l).length / labels.length;
    return { eps, accuracy, received };
  } finally {
    dispose(noises);
    model.train(wasTraining);
  }
}
