// The neuron layers an analysis reads: by default the last two conv layers (the GN-FT paper's Fig. 3), or
// the ones the user names, checked against the model's neuron layers (models/neurons.ts defines them).

import { NeuronLayerError, resolveNeuronLayer } from '../models/neurons.ts';
import type { Module } from '../nn/index.ts';

/**
 * The layers analysed when none are named: the last two conv neuron layers (the GN-FT paper's Fig. 3
 * reads "the last two convolutional layers"); a model with fewer convs (LSTM, KWT) gets its last two
 * neuron layers of any kind.
 */
export function defaultAnalysisLayers(model: Module, neuronLayers: readonly string[]): string[] {
  const kinds = neuronLayers.map((n) => resolveNeuronLayer(model, n).kind);
  const convs = neuronLayers.filter((_, i) => kinds[i] === 'conv');
  return (convs.length >= 2 ? convs : neuronLayers).slice(-2);
}

/** Checks user-named layers against the model's neuron layers; the error lists them. */
export function checkLayers(model: Module, neuronLayers: readonly string[], requested: readonly string[]): string[] {
  if (requested.length === 0) throw new NeuronLayerError('name at least one layer');
  for (const name of requested) {
    if (!neuronLayers.includes(name)) {
      throw new NeuronLayerError(`'${name}' is not a neuron layer of this model; its neuron layers are ${neuronLayers.join(', ')}`);
    }
    resolveNeuronLayer(model, name);
  }
  if (new Set(requested).size !== requested.length) throw new NeuronLayerError(`layers are named twice: ${requested.join(', ')}`);
  return [...requested];
}
