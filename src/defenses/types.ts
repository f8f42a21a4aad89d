// What a defense is (DESIGN.md "Interfaces"): it receives a model and the defender's clean data and
// nothing else. The type makes that true: CleanData holds features and labels of clean training clips,
// no path, no data set, no test split, no trigger. Every choice a defense makes (a pruning threshold, a
// checkpoint, a stopping point) is made on a hold-out part of that clean data.
import type { InputTimeAxis } from '../data/augment.ts';
import type { FeatureSet } from '../data/feature-set.ts';
import type { KwsModel } from '../models/registry.ts';
import { type OptionSpecs, type OptionsOf, type OptionValue, resolveOptions } from '../options/options.ts';

/** The defender's clean clips: a class-stratified subset of the clean training split, as features. */
export type CleanData = FeatureSet;

/** What a defense knows about the model besides its weights (from the model registry). */
export interface ModelInfo {
  /** registry name ('resnet', 'lstm', ...) */
  name: string;
  /** paths of the neuron layers, in forward order (specs/models.md "Neurons") */
  neuronLayers: string[];
  /** what dim 1 of the model's input is (from its front-end); fine-tuning's `augment` shifts and noises along it */
  timeAxis?: InputTimeAxis;
}

export interface DefenseProgress {
  /** a named phase starts ('pruning', 'fine-tuning', ...) */
  stage?(name: string): void;
  /** a unit of work within a phase: done of total, with a short status */
  step?(phase: string, done: number, total: number, status?: string): void;
  /** one finished epoch of a training loop */
  epoch?(row: DefenseEpoch): void;
}

export interface DefenseEpoch {
  phase: string;
  epoch: number;
  epochs: number;
  lr: number;
  loss: number;
  holdoutAccuracy: number;
  holdoutLoss: number;
  seconds: number;
}

/** `options`: as given (run resolves them) or, for purify, resolved and typed by the declaration. */
export interface DefenseContext<O = Record<string, unknown>> {
  options: O;
  seed: number;
  model: ModelInfo;
  progress?: DefenseProgress;
  /** a folder for per-epoch checkpoints (resumable runs); none: nothing is written */
  checkpointDir?: string;
  resume?: boolean;
}

/** What a defense reports beside the purified model (which it leaves in the model it was given). */
export interface DefenseReport {
  defense: string;
  options: Record<string, OptionValue>;
  cleanClips: number;
  fitClips: number;
  holdoutClips: number;
  /** clean hold-out accuracy of the model before and after the defense */
  holdoutBefore: number;
  holdoutAfter: number;
  epochs: DefenseEpoch[];
  /** defense-specific facts: pruned neurons, the chosen epoch, thresholds, notes */
  details: Record<string, unknown>;
  seconds: number;
}

export interface DefenseSpec<S extends OptionSpecs = OptionSpecs> {
  name: string;
  description: string;
  /** the smallest clean set it can work with (refused below, with a clear error) */
  minCleanClips: number;
  /** false for data-free defenses (CLP): run() then gets an empty clean set */
  needsData: boolean;
  options: S;
  /** named option sets: 'default' (the project's choice) and 'paper' (the source's recipe) */
  recipes: Record<string, Record<string, OptionValue>>;
  /** why this defense cannot run on the model (no BatchNorm for CLP, ...); null when it can */
  /** `options`: as given (unresolved), for a defense whose need depends on them (fp's layer) */
  modelProblem?(model: KwsModel, info: ModelInfo, options?: Record<string, unknown>): string | null;
  /** Resolves ctx.options over the declared defaults (refusing unknown and bad values), then purifies. */
  run(model: KwsModel, clean: CleanData, ctx: DefenseContext): Promise<DefenseReport>;
  /** Purifies a model that passed modelProblem, with options already resolved against `options` (defend-run resolves them before it reads any clip). */
  purify(model: KwsModel, clean: CleanData, ctx: DefenseContext<OptionsOf<S>>): Promise<DefenseReport>;
}

/**
 * A defense from its declaration and purify(). run() refuses a model the defense cannot work on
 * (modelProblem), then resolves the options once and hands them to purify() typed by the declaration.
 */
export function defineDefense<S extends OptionSpecs>(spec: Omit<DefenseSpec<S>, 'run'>): DefenseSpec<S> {
  return {
    ...spec,
    // async, so a refusal rejects the promise as any other failure of the run does
    run: async (model, clean, ctx) => {
      const problem = spec.modelProblem?.(model, ctx.model, ctx.options);
      if (problem) throw new Error(problem);
      return spec.purify(model, clean, { ...ctx, options: resolveOptions(spec.name, spec.options, ctx.options) });
    },
  };
}
