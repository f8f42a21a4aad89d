// The model zoo (specs/models.md): each family registers a spec that says what front-end it reads,
// the shape of one input clip, its neuron layers and how to build it from a saved configuration.
import { type FrontEnd, getFrontEnd } from '../audio/frontends.ts';
import type { Module } from '../nn/index.ts';
import type { Tensor } from '../torch/index.ts';

/** A keyword-spotting network: features [batch, ...inputShape] -> logits [batch, classes]. */
export type KwsModel = Module & { forward(x: Tensor): Tensor };

export interface ModelSpec<Config extends object = Record<string, unknown>> {
  /** registry name, e.g. 'resnet', 'kwt-2' */
  name: string;
  description: string;
  /** the default front-end (src/audio/frontends.ts); a run may choose another of the same kind */
  frontEnd: string;
  /** shape of one clip's features as the default front-end gives them (no batch dim) */
  inputShape: number[];
  /** what the model reads: 'spectral' features [frames, coefficients] or a 'waveform' [samples] */
  inputKind: 'spectral' | 'waveform';
  /**
   * The configuration fields that follow from one clip's feature shape (input sizes, positional
   * embeddings, flatten sizes); throws an Error saying why when the model cannot take that shape.
   */
  inputConfig(shape: readonly number[]): Partial<Config>;
  /** the configuration used when none is given (classes excluded) */
  defaults: Config;
  build(config: Config & { classes: number }): KwsModel;
  /**
   * Parameter paths of the layers whose output units are "neurons" (specs/models.md "Neurons"):
   * Conv output channels and Linear output units, the classifier excluded, in forward order.
   */
  neuronLayers(model: KwsModel): string[];
  /**
   * Settings of the `fast` training recipe this model needs to train well (why, measured, in a comment
   * at the registration); a recipe chosen by name or an explicit override still wins.
   */
  fastRecipe?: { batchSize?: number; lr?: number };
}

const specs = new Map<string, ModelSpec<object>>();

export function registerModel<C extends object>(spec: ModelSpec<C>): void {
  if (specs.has(spec.name)) throw new Error(`model '${spec.name}' is registered twice`);
  specs.set(spec.name, spec as unknown as ModelSpec<object>);
}

/** One size of a family: its registry name, what it is, and its default configuration. */
export interface ModelVariant<C extends object> {
  name: string;
  description: string;
  defaults: C;
}

/** Registers the sizes of one family (kwt, kwt-2, ...): specs that differ only in name, description and defaults. */
export function registerFamily<C extends object>(family: Omit<ModelSpec<C>, keyof ModelVariant<C>>, variants: readonly ModelVariant<C>[]): void {
  const { frontEnd, inputShape, inputKind, inputConfig, build, neuronLayers, fastRecipe } = family;
  for (const { name, description, defaults } of variants) {
    registerModel<C>({
      name,
      description,
      frontEnd,
      inputShape: [...inputShape],
      inputKind,
      inputConfig,
      defaults: { ...defaults },
      build,
      neuronLayers,
      ...(fastRecipe ? { fastRecipe } : {}),
    });
  }
}

export function getModelSpec(name: string): ModelSpec<object> {
  const spec = specs.get(name);
  if (!spec) throw new Error(`unknown model '${name}'; available: ${[...specs.keys()].join(', ')}`);
  return spec;
}

export const modelNames = (): string[] => [...specs.keys()];

export type MemoryLayout = 'channelsLast' | 'contiguous';

/** Why `spec` cannot read what `frontEnd` gives, with what to use instead; null when it can. */
export function frontEndProblem(spec: ModelSpec<object>, frontEnd: FrontEnd): string | null {
  const kind = frontEnd.outputShape.length === 1 ? 'waveform' : 'spectral';
  if (kind !== spec.inputKind) {
    return `model '${spec.name}' reads ${spec.inputKind === 'waveform' ? 'raw waveforms' : 'spectral features'}, but front-end '${frontEnd.name}' gives ${kind === 'waveform' ? 'waveforms' : 'spectral features'}; use a ${spec.inputKind} front-end such as '${spec.frontEnd}'`;
  }
  try {
    spec.inputConfig(frontEnd.outputShape);
  } catch (e) {
    return `model '${spec.name}' cannot read front-end '${frontEnd.name}' (${frontEnd.outputShape.join('x')} per clip): ${(e as Error).message}`;
  }
  return null;
}

/** The model's configuration for clips from `frontEndName` (its default front-end when omitted). */
export function configForFrontEnd(name: string, frontEndName?: string): { config: Record<string, unknown>; frontEnd: FrontEnd; inputShape: number[] } {
  const spec = getModelSpec(name);
  const frontEnd = getFrontEnd(frontEndName ?? spec.frontEnd);
  const problem = frontEndProblem(spec, frontEnd);
  if (problem) throw new Error(problem);
  return { config: { ...spec.defaults, ...spec.inputConfig(frontEnd.outputShape) }, frontEnd, inputShape: [...frontEnd.outputShape] };
}

/**
 * Builds a registered model with its defaults overridden by `config`. 2-D conv models get their
 * weights in channels_last by default: measured on the KWS ResNet (npm run bench, 2 cores) it made
 * a training step 1.3x faster than the default layout.
 */
export function buildModel(name: string, config: Record<string, unknown> & { classes: number }, layout: MemoryLayout = 'channelsLast'): KwsModel {
  const spec = getModelSpec(name);
  return withLayout(spec.build({ ...spec.defaults, ...config }), layout);
}

export function withLayout(model: KwsModel, layout: MemoryLayout): KwsModel {
  if (layout === 'channelsLast' && model.parameters().some((p) => p.ndim === 4)) model.channelsLast();
  return model;
}
