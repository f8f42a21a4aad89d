// Public surface of src/audio: one line per file.

export {
  applyInBatches,
  type FrontEnd,
  type FrontEndName,
  fitLength,
  frontEndNames,
  frontEnds,
  getFrontEnd,
  isFrontEndName,
  mfcc16k,
  spectralFrontEnd,
  waveformFrontEnd,
} from './frontends.ts';
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
export { createResampler, type ResampleOptions, type Resampler, resample } from './resample.ts';
export { decodeWav, type EncodeWavOptions, encodeWav, probeWav, readWav, type Wav, WavError, type WavFormat, type WavInfo, writeWav } from './wav.ts';
