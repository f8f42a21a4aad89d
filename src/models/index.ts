// The model zoo: importing this module registers every model (specs/models.md), in the GN-FT paper's order.
import './resnet.ts';
import './lstm.ts';
import './smallcnn.ts';
import './kwt.ts';
import './eat.ts';

export { AADownsample, Down, Eat, type EatConfig, eatDefaults, eatMDefaults, ResBlock1dTF, TAggregate } from './eat.ts';
export { Kwt, type KwtConfig, kwtDefaults } from './kwt.ts';
export { type LstmConfig, LstmNet, lstmDefaults, lstmLargeDefaults, lstmUnitParameters } from './lstm.ts';
export {
  applyMask,
  classifierLayer,
  isConv,
  lastConvLayer,
  moduleAt,
  type NeuronLayer,
  NeuronLayerError,
  type NeuronLayerKind,
  type NeuronMask,
  resolveNeuronLayer,
  withNeuronZeroed,
} from './neurons.ts';
export {
  buildModel,
  configForFrontEnd,
  frontEndProblem,
  getModelSpec,
  type KwsModel,
  type MemoryLayout,
  type ModelSpec,
  modelNames,
  registerModel,
  withLayout,
} from './registry.ts';
export { BasicBlock, ResNet, type ResNetConfig, resnetDefaults, resnetFlatSize } from './resnet.ts';
export { SmallCnn, type SmallCnnConfig, smallCnnDefaults, smallCnnFlatSize } from './smallcnn.ts';
