// Modules, layers, initialisation and optimizers over the tensor engine.
export { chain, release } from './chain.ts';
export { withForwardHook, withForwards } from './hooks.ts';
export { defaultBias, defaultWeight, fanIn, normalParameter, uniformParameter, xavierUniform } from './init.ts';
export { type AttentionCallOptions, MultiheadAttention, type MultiheadAttentionOptions } from './layers/attention.ts';
export { Dropout, Flatten, ReLU, Sequential } from './layers/basic.ts';
export { Conv1d, type Conv1dOptions, Conv2d, type Conv2dOptions } from './layers/conv.ts';
export { FeatureNorm, fitFeatureNorms } from './layers/feature-norm.ts';
export { Linear } from './layers/linear.ts';
export { LSTM, type LSTMOptions, type LSTMState } from './layers/lstm.ts';
export { type AnyBatchNorm, BatchNorm1d, BatchNorm2d, isBatchNorm, LayerNorm, recalibrateBatchNorm, withFrozenBatchNormStats } from './layers/norm.ts';
export {
  type Activation,
  type EncoderCallOptions,
  TransformerEncoder,
  TransformerEncoderLayer,
  type TransformerEncoderLayerOptions,
  type TransformerEncoderOptions,
} from './layers/transformer.ts';
export { buffer, isBuffer, type Layer, type LayerModule, Module, parameter } from './module.ts';
export * from './optim/index.ts';
