// The model zoo (specs/models.md): each family registers a spec that says what front-end it reads,
// the shape of one input clip, its neuron layers and how to build it from a saved configuration.
import type { Module } from '../nn/index.ts';
import type { Tensor } from '../torch/index.ts';

/** A keyword-spotting network: features [batch, ...inputShape] -> logits [batch, classes]. */
export type KwsModel = Module & { forward(x: Tensor): Tensor };

export interface ModelSpec<Config extends object = Record<string, unknown>> {
  /** registry name, e.g. 'resnet', 'kwt-2' */
  name: string;
  description: string;
  /** name of the front-end in src/audio/frontends.ts that produces this model's input */
  frontEnd: string;
  /** shape of one clip's features as the front-end gives them (no batch dim) */
  inputShape: number[];
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

export function getModelSpec(name: string): ModelSpec<object> {
  const spec = specs.get(name);
  if (!spec) throw new Error(`unknown model '${name}'; available: ${[...specs.keys()].join(', ')}`);
  return spec;
}

export const modelNames = (): string[] => [...specs.keys()];

export type MemoryLayout = 'channelsLast' | 'contiguous';

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
