// Which defenses cannot run on a TorchScript model on an engine without activation taps, which layer each
// needs and why. These defenses read or change a layer's activations in the middle of the forward (a
// forward hook, or the layer's forward swapped for a masked one); without taps every layer of an archive
// runs inside the compiled code, out of a hook's reach, so they are refused before any work with this
// reason instead of failing half-way. The others (gnft, ft, ft-sam, tsbd) need only parameters, gradients
// and train/eval, which an archive gives. With taps (activationsReachable probes for them) nothing is
// refused here, and each defense's own modelProblem says which layers its hooks cannot reach.

import type { KwsModel } from '../models/registry.ts';
import { isTorchScriptModel } from '../models/torchscript.ts';
import { activationsReachable } from '../models/torchscript-run.ts';
import { isBatchNorm } from '../nn/index.ts';
import { classifierLayer, lastConvLayer } from './neurons.ts';
import type { ModelInfo } from './types.ts';

const list = (names: string[]) => (names.length > 4 ? `${names.slice(0, 4).join(', ')}, ...` : names.join(', '));
const batchNorms = (model: KwsModel) =>
  model
    .namedModules()
    .filter(([, m]) => isBatchNorm(m))
    .map(([n]) => `'${n}'`);

/** What each hook-based defense needs, in words naming the model's layer. */
const activationNeeds: Record<string, (model: KwsModel, info: ModelInfo) => string> = {
  fp: (model, info) =>
    `the activations of the last conv layer ('${lastConvLayer(model, info.neuronLayers) ?? 'none found'}'): FP ranks its channels by their mean activation on clean clips`,
  clp: (model) =>
    `the outputs of the conv and BatchNorm layers during one forward (${list(batchNorms(model))}): CLP pairs each conv with the BatchNorm that reads its output`,
  ngf: (model, info) =>
    `the input and output of the classifier ('${classifierLayer(model, info.neuronLayers)}') during the forward: NGF's natural-gradient statistics are built from them`,
  nft: (model) =>
    `to run the BatchNorm layers (${list(batchNorms(model))}) with masked scales: NFT multiplies each channel's scale by a learned mask inside their forward`,
  anp: (model) =>
    `to run the BatchNorm layers (${list(batchNorms(model))}) with perturbed and masked scales: ANP changes each channel's scale inside their forward`,
};

/** The defenses that run on a TorchScript model now. */
export const torchScriptDefenses = (all: readonly string[]): string[] => all.filter((d) => !Object.hasOwn(activationNeeds, d));

/** Why `defense` cannot run on `model` because it is a TorchScript archive, or null. */
export function torchScriptProblem(defense: string, model: KwsModel, info: ModelInfo, all: readonly string[]): string | null {
  if (!isTorchScriptModel(model) || !Object.hasOwn(activationNeeds, defense) || activationsReachable(model)) return null;
  return (
    `${defense} cannot run on this TorchScript model yet: it needs ${activationNeeds[defense](model, info)}, and in a TorchScript archive ` +
    `every layer runs inside the archive's compiled code, where kwshield cannot read or change a layer's activations. ` +
    `Defenses that run on it: ${torchScriptDefenses(all).join(', ')}`
  );
}
