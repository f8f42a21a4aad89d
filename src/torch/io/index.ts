// Tensor file formats.
export {
  decodeSafetensors,
  encodeSafetensors,
  type LoadOptions,
  loadSafetensors,
  readSafetensorsHeader,
  type SafetensorsEntry,
  SafetensorsError,
  type SafetensorsHeader,
  saveSafetensors,
  type TensorDict,
} from './safetensors.ts';
