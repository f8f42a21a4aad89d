// Public surface of src/audio: one line per file.
export { decodeWav, type EncodeWavOptions, encodeWav, probeWav, readWav, type Wav, WavError, type WavFormat, type WavInfo, writeWav } from './wav.ts';
export { createResampler, type ResampleOptions, type Resampler, resample } from './resample.ts';
export {
  brownNoise,
  generateNoise,
  type HumOptions,
  humNoise,
  type MixOptions,
  mixAtSnr,
  type NoiseKind,
  type NoiseOptions,
  noiseKinds,
  pinkNoise,
  type RandomSource,
  rms,
  whiteNoise,
} from './noise.ts';
export {
  applyInBatches,
  type FrontEnd,
  type FrontEndName,
  frontEndNames,
  frontEnds,
  fitLength,
  getFrontEnd,
  isFrontEndName,
  mfcc16k,
  spectralFrontEnd,
  waveformFrontEnd,
} from './frontends.ts';
