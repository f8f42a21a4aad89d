// What an attack is (DESIGN.md "Interfaces"): a named recipe that, given the training labels, a
// front-end and a seed, decides which training clips to poison (the poison plan) and how the trigger
// changes a clip, at training time and at test time. Everything that fixes the trigger is kept in an
// artifact (JSON + tensors) so that a saved attack reproduces exactly the same triggered clips.
import type { FrontEnd } from '../audio/frontends.ts';
import type { Trigger } from '../data/features.ts';
import type { KwsModel } from '../models/registry.ts';
import type { OptionSpecs, OptionsOf, OptionValue } from '../options/options.ts';
import type { Tensor } from '../torch/index.ts';

/** Poisoning of training clips ('train') or the trigger a deployed model meets ('test'). */
export type AttackPhase = 'train' | 'test';

export interface PoisonPlan {
  attack: string;
  /** 'dirty': poisoned clips are relabelled to the target; 'clean': labels are kept (FlowMur) */
  labelMode: 'dirty' | 'clean';
  target: string;
  targetLabel: number;
  /** positions in the training split's clip list that get the trigger, ascending */
  indices: number[];
  /** what the plan was asked for: share of the training set (of the target class for clean-label attacks) */
  poisonRatio: number;
  trainClips: number;
  seed: number;
}

/** Everything that fixes an attack's triggers: JSON-able settings plus named tensors (a waveform, a learned perturbation). */
export interface TriggerArtifact {
  attack: string;
  version: 1;
  options: Record<string, OptionValue>;
  seed: number;
  /** the front-end the triggers were made for */
  frontEnd: string;
  /** attack-specific values (selected pool clip, per-clip levels, ...) */
  data: Record<string, unknown>;
  /** attack-specific tensors, saved as trigger.safetensors */
  tensors: Map<string, Tensor>;
}

/** The training clips as an attack may see them: labels, and their waveforms at the front-end's rate. */
export interface TrainClips {
  labels: readonly number[];
  /** [indices.length, frontEnd.inputSamples] waveforms (the caller disposes them) */
  loadWaves(indices: readonly number[]): Promise<Tensor>;
}

export interface AttackContext {
  options: Record<string, OptionValue>;
  seed: number;
  frontEnd: FrontEnd;
  classes: readonly string[];
  targetLabel: number;
  /** share of the training set to poison, in (0, 1) */
  poisonRatio: number;
  train: TrainClips;
  /**
   * A model trained on clean data with `frontEnd` (DABA's trigger and host selection use it). The
   * pipeline passes the clean model of the same configuration when it has one.
   */
  surrogate?: KwsModel;
  /** Trains a surrogate of the given family on the clean training clips (FlowMur); the caller's cache decides where. */
  trainSurrogate?: (model: string, frontEnd: string) => Promise<KwsModel>;
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface AttackSpec<S extends OptionSpecs = OptionSpecs> {
  name: string;
  description: string;
  /** where the trigger acts: before the front-end ('waveform') or on its output ('features') */
  domain: 'waveform' | 'features';
  labelMode: 'dirty' | 'clean';
  /** set when this is a documented stand-in for the original attack (named so in every result) */
  substitution?: string;
  options: S;
  /** whether prepare() needs ctx.surrogate / ctx.trainSurrogate */
  needs?: { surrogate?: boolean; trainSurrogate?: boolean };
  /** the front-end to run with a model of this input kind, given the model's own default */
  frontEndFor(kind: 'spectral' | 'waveform', modelDefault: string): string;
  /** why the trigger cannot ride on this front-end, with what to use instead; null when it can */
  frontEndProblem(frontEnd: FrontEnd): string | null;
  /** Checks inputs the options name (a pool folder) before any training starts; throws saying what to fix. */
  check?(options: OptionsOf<S>): Promise<void>;
  /** Decides the poison plan and makes the artifact (selection, optimisation). */
  prepare(ctx: AttackContext): Promise<{ plan: PoisonPlan; artifact: TriggerArtifact }>;
  /**
   * The trigger of a phase, from an artifact (a fresh one or one read from disk), for waveforms or
   * features of `frontEnd` (the artifact's own, or another compatible one: eval --attack-of).
   */
  trigger(artifact: TriggerArtifact, phase: AttackPhase, frontEnd: FrontEnd): Trigger;
}
