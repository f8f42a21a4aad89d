// The defenses (specs/defenses.md): importing this module registers all of them. Library use:
//
//   import { defenses } from 'kwshield';
//   const gnft = defenses.getDefense('gnft');
//   const report = await gnft.run(model, cleanData, { options: gnft.recipes.default, seed: 0, model: info });
//   // `model` now holds the purified weights; `cleanData` is a FeatureSet of clean training clips only.
import './ft.ts';
import './fp.ts';
import './gnft.ts';
import './nft.ts';
import './ngf.ts';
import './clp.ts';
import './anp.ts';
import './ft-sam.ts';
import './tsbd.ts';

export { applyMask, classifierLayer, lastConvLayer, moduleAt, type NeuronMask } from '../models/neurons.ts';
export { type AnpSettings, anp, anpOptions, chooseThreshold, pruneByMask, type ThresholdTrial, thresholdGrid, trainAnpMasks } from './anp.ts';
export { type ConvBatchNormPair, channelLipschitz, clp, clpOptions, convBatchNormPairs } from './clp.ts';
export { epochBatches, type FineTuneSettings, fineTune, holdoutIndices, plainStep } from './fine-tune.ts';
export { CleanDataError, checkCleanData, fineTuneOptionSpecs } from './fine-tune-frame.ts';
export { fp } from './fp.ts';
export { ft } from './ft.ts';
export { ftSam, ftSamOptions } from './ft-sam.ts';
export { gnft, gnftOptions } from './gnft.ts';
export {
  checkStepOptions,
  type GradNormStepOptions,
  gradNormPenaltyExactStep,
  gradNormPenaltyStep,
  gradNormStepDefaults,
  type PerturbationNorm,
} from './gnft-step.ts';
export { freezeParameters, maskableNorms, maskFloor, type NormLayer, nft, nftOptions, normLayerProblem, withNormReparam } from './nft.ts';
export {
  type EkfacSettings,
  type EkfacState,
  ekfacState,
  fisherDiagonal,
  type Geometry,
  layerGeometry,
  type NaturalGradientStats,
  naturalGradientStep,
  ngf,
  ngfOptions,
  perSampleGradients,
  type TunedLayer,
  tunedLayer,
} from './ngf.ts';
export { defenseNames, getDefense, registerDefense, UnknownDefenseError } from './registry.ts';
export {
  type NeuronGroup,
  neuronRatios,
  rankNeurons,
  reinitialise,
  tsbd,
  tsbdNeuronGroups,
  tsbdOptions,
  type UnlearningSettings,
  unlearn,
} from './tsbd.ts';
export type { CleanData, DefenseContext, DefenseEpoch, DefenseProgress, DefenseReport, DefenseSpec, ModelInfo } from './types.ts';
