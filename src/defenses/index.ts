// The defenses (specs/defenses.md): importing this module registers all of them. Library use:
//
//   import { defenses } from 'kwshield';
//   const gnft = defenses.getDefense('gnft');
//   const report = await gnft.run(model, cleanData, { options: gnft.recipes.default, seed: 0, model: info });
//   // `model` now holds the purified weights; `cleanData` is a FeatureSet of clean training clips only.
import './ft.ts';
import './fp.ts';
import './gnft.ts';

export { CleanDataError, checkCleanData, fineTuneOptionSpecs } from './common.ts';
export { epochBatches, type FineTuneSettings, fineTune, holdoutIndices, plainStep } from './fine-tune.ts';
export { fp } from './fp.ts';
export { ft } from './ft.ts';
export { gnft, gnftOptions } from './gnft.ts';
export {
  checkStepOptions,
  type GradNormStepOptions,
  gradNormPenaltyExactStep,
  gradNormPenaltyStep,
  gradNormStepDefaults,
  type PerturbationNorm,
} from './gnft-step.ts';
export { applyMask, classifierLayer, lastConvLayer, moduleAt, type NeuronMask } from './neurons.ts';
export { defenseNames, getDefense, registerDefense, UnknownDefenseError } from './registry.ts';
export type { CleanData, DefenseContext, DefenseEpoch, DefenseProgress, DefenseReport, DefenseSpec, ModelInfo } from './types.ts';
