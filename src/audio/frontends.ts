// Named waveform -> feature front-ends (specs/cli.md names, specs/attacks.md section 0 settings):
// batched, differentiable w.r.t. the waveform, built from libtorch ops (stft, matrix products, log).
//
// Layout: every front-end takes a float waveform batch [batch, inputSamples] and returns
//   spectral front-ends: [batch, frames, coefficients] (time-major; models add the channel dim:
//                        features.unsqueeze(1) -> [batch, 1, frames, coefficients], the (1, T, F) of [GNFT])
//   waveform-16k:        [batch, 16384]
//   waveform-16k-1s:     [batch, 16000] (the clip as read: a user's own model with its front-end inside)
//
// Example:
//   const fe = getFrontEnd('mfcc-16k');
//   const feats = noGrad(() => applyInBatches(fe, waves));     // [N, 101, 40]
//   const one = mfcc16k(wave.unsqueeze(0));                     // differentiable, [1, 101, 40]

import {
  cat,
  clamp,
  conv2d,
  hannWindow,
  isFloating,
  keep,
  log10,
  maximum,
  narrow,
  pad,
  reflectionPad1d,
  stft,
  type Tensor,
  tensor,
  tidy,
  viewAsReal,
} from '../torch/index.ts';
import { call } from '../torch/ops/dispatch.ts';
import { dctMatrix, type MelScale, melFilterbank } from './mel.ts';

export type FrontEndName =
  | 'mfcc-16k'
  | 'mfcc-44k'
  | 'mfcc-librosa'
  | 'mfcc-kwt'
  | 'mfcc-flowmur'
  | 'logmel-16k'
  | 'waveform-16k'
  | 'waveform-44k'
  | 'waveform-16k-1s';

export interface FrontEnd {
  readonly name: string;
  /** sample rate (Hz) the waveform must have */
  readonly sampleRate: number;
  /** samples per clip apply() expects: input is [batch, inputSamples] */
  readonly inputSamples: number;
  /** shape of one clip's output: [frames, coefficients] or [samples] */
  readonly outputShape: readonly number[];
  /** [batch, inputSamples] float waveform -> [batch, ...outputShape] float32; differentiable */
  apply(wave: Tensor): Tensor;
}

/** One STFT -> mel -> dB (-> DCT) pipeline. */
export interface SpectralFrontEndConfig {
  sampleRate: number;
  inputSamples: number;
  nFft: number;
  hopLength: number;
  /** Hann window length, centred in nFft (default nFft) */
  winLength?: number;
  /** pad floor(nFft/2) on both sides so frame t is centred on sample t*hop (torch/librosa center=True) */
  center: boolean;
  /** how center pads: torchaudio 'reflect', librosa >= 0.9 'constant' (zeros) */
  padMode: 'reflect' | 'constant';
  nMels: number;
  fMin?: number;
  fMax?: number;
  melScale: MelScale;
  melNorm: 'slaney' | null;
  binFrequencies: 'torchaudio' | 'fft';
  /** dB floor relative to each clip's maximum (torchaudio MFCC and librosa power_to_db: 80); null: none */
  topDb: number | null;
  /** DCT coefficients to keep; omit for a log-mel front-end */
  nMfcc?: number;
}

const AMIN = 1e-10; // power floor before the log: torchaudio AmplitudeToDB and librosa power_to_db

/** Frames an STFT yields for `samples` samples. */
export function frameCount(samples: number, nFft: number, hopLength: number, center: boolean): number {
  const padded = center ? samples + 2 * Math.floor(nFft / 2) : samples;
  if (padded < nFft) throw new RangeError(`${samples} samples are too few for an STFT of size ${nFft}${center ? ' (centred)' : ''}`);
  return 1 + Math.floor((padded - nFft) / hopLength);
}

/** Pads with zeros at the end, or keeps the first `samples`, along the last dim of [batch, time]. */
export function fitLength(wave: Tensor, samples: number): Tensor {
  const have = wave.size(-1);
  if (have >= samples) return narrow(wave, -1, 0, samples);
  return pad(wave, [0, samples - have]);
}

function checkWaveform(name: string, wave: Tensor, sampleRate: number, samples: number | null): Tensor {
  const shape = wave.shape;
  if (shape.length !== 2 || (samples !== null && shape[1] !== samples)) {
    const want = samples === null ? '[batch, samples]' : `[batch, ${samples}]`;
    const hint = samples === null ? '' : `; for a single clip use wave.unsqueeze(0), for other lengths fitLength(wave, ${samples})`;
    throw new Error(`front-end '${name}': expected a waveform batch ${want} at ${sampleRate} Hz, got shape [${shape.join(', ')}]${hint}`);
  }
  if (!isFloating(wave.dtype)) throw new Error(`front-end '${name}': expected a floating-point waveform, got ${wave.dtype}`);
  return wave.dtype === 'float32' ? wave : wave.to('float32');
}

/**
 * x [batch, time, k] times w (as a [n, k, 1, 1] conv weight) -> [batch, time, n].
 * A 1x1 convolution over a channels-last view instead of matmul: with Debian's libtorch matmul goes to
 * the reference BLAS (~10x slower here), while convolution has its own fast kernels, forward and backward.
 */
function projectLastDim(x: Tensor, w: Tensor): Tensor {
  const [batch, time, k] = x.shape;
  const y = conv2d(x.reshape([batch, time, 1, k]).permute([0, 3, 1, 2]), w);
  return y.permute([0, 2, 3, 1]).reshape([batch, time, w.size(0)]);
}

interface SpectralConstants {
  window: Tensor;
  /** mel filterbank as [nMels, 2*nFreqs, 1, 1]: each weight twice, for the interleaved (re, im) squares */
  mel: Tensor;
  /** DCT-II as [nMfcc, nMels, 1, 1] */
  dct: Tensor | null;
}

/** A front-end computing (log-)mel features as torchaudio/librosa do, per clip. */
export function spectralFrontEnd(name: string, config: SpectralFrontEndConfig): FrontEnd {
  const c = config;
  const nFreqs = Math.floor(c.nFft / 2) + 1;
  const frames = frameCount(c.inputSamples, c.nFft, c.hopLength, c.center);
  const fb = melFilterbank({
    sampleRate: c.sampleRate,
    nFft: c.nFft,
    nMels: c.nMels,
    fMin: c.fMin,
    fMax: c.fMax,
    scale: c.melScale,
    norm: c.melNorm,
    binFrequencies: c.binFrequencies,
  });
  // As 1x1 conv weights: the filterbank transposed to [nMels, 2*nFreqs] with each weight twice (for the
  // interleaved re^2, im^2), the DCT transposed to [nMfcc, nMels].
  const melWeight = new Float32Array(c.nMels * 2 * nFreqs);
  for (let m = 0; m < c.nMels; m++) {
    for (let f = 0; f < nFreqs; f++) melWeight[m * 2 * nFreqs + 2 * f] = melWeight[m * 2 * nFreqs + 2 * f + 1] = fb[f * c.nMels + m];
  }
  const nMfcc = c.nMfcc;
  let dctWeight: Float32Array | null = null;
  if (nMfcc !== undefined) {
    const dct = dctMatrix(nMfcc, c.nMels);
    dctWeight = new Float32Array(nMfcc * c.nMels);
    for (let m = 0; m < c.nMels; m++) for (let j = 0; j < nMfcc; j++) dctWeight[j * c.nMels + m] = dct[m * nMfcc + j];
  }
  // Persistent tensors per device: built on first use, never freed by a scope.
  const constants = new Map<string, SpectralConstants>();

  function constantsOn(device: string): SpectralConstants {
    let k = constants.get(device);
    if (k) return k;
    k = tidy(() => {
      const onDevice = (t: Tensor) => keep(device === 'cpu' ? t : t.toDevice(device));
      const winLength = c.winLength ?? c.nFft;
      let window = hannWindow(winLength, { periodic: true });
      // torch.stft centres a shorter window inside the frame
      const left = Math.floor((c.nFft - winLength) / 2);
      if (winLength < c.nFft) window = pad(window, [left, c.nFft - winLength - left]);
      return {
        window: onDevice(window),
        mel: onDevice(tensor(melWeight, [c.nMels, 2 * nFreqs, 1, 1])),
        dct: dctWeight && nMfcc !== undefined ? onDevice(tensor(dctWeight, [nMfcc, c.nMels, 1, 1])) : null,
      };
    });
    constants.set(device, k);
    return k;
  }

  function apply(wave: Tensor): Tensor {
    const x = checkWaveform(name, wave, c.sampleRate, c.inputSamples);
    const k = constantsOn(x.device);
    const batch = x.size(0);
    let framed = x;
    if (c.center) {
      const p = Math.floor(c.nFft / 2);
      framed = c.padMode === 'reflect' ? reflectionPad1d(x.unsqueeze(1), [p, p]).squeeze(1) : pad(x, [p, p]);
    }
    const spec = stft(framed, { nFft: c.nFft, hopLength: c.hopLength, window: k.window, center: false, onesided: true }); // complex [B, F, T]
    // |X|^2 = re^2 + im^2, summed by the mel projection itself (weights duplicated per re/im).
    const squares = viewAsReal(spec)
      .permute([0, 2, 1, 3])
      .reshape([batch, frames, 2 * nFreqs])
      .square();
    const mel = projectLastDim(squares, k.mel); // [B, T, nMels]
    let db = log10(clamp(mel, AMIN)).mul(10);
    if (c.topDb !== null) {
      // Per clip, as torchaudio does for a single [time] or [1, time] input and librosa for one clip.
      const peak = call('aten::amax', '', [db.handle, [1, 2], true]);
      db = maximum(db, peak.sub(c.topDb));
    }
    return k.dct ? projectLastDim(db, k.dct) : db;
  }

  return { name, sampleRate: c.sampleRate, inputSamples: c.inputSamples, outputShape: [frames, c.nMfcc ?? c.nMels], apply };
}

/** Raw waveform padded with zeros at the end or cropped to `outputSamples` (EAT's 2^14 input). */
export function waveformFrontEnd(name: string, sampleRate: number, inputSamples: number, outputSamples: number): FrontEnd {
  return {
    name,
    sampleRate,
    inputSamples,
    outputShape: [outputSamples],
    apply: (wave) => fitLength(checkWaveform(name, wave, sampleRate, null), outputSamples),
  };
}

// torchaudio.transforms.MFCC(sample_rate, n_mfcc=40, melkwargs={n_fft, hop_length}) defaults: periodic
// Hann, center=True with reflect padding, power 2, 128 HTK mels 0..sr/2 without area normalisation,
// AmplitudeToDB('power', top_db=80), orthonormal DCT-II ([GNFT] prepare_dataset.py, attacks.md section 0).
const torchaudioMfcc = {
  center: true,
  padMode: 'reflect',
  nMels: 128,
  melScale: 'htk',
  melNorm: null,
  binFrequencies: 'torchaudio',
  topDb: 80,
  nMfcc: 40,
} as const;
// librosa.feature.mfcc / melspectrogram defaults (librosa >= 0.9): periodic Hann, center=True with zero
// padding, power 2, Slaney mel scale with Slaney area normalisation, power_to_db(ref=1, amin=1e-10,
// top_db=80), orthonormal DCT-II.
const librosaMel = { center: true, padMode: 'constant', melScale: 'slaney', melNorm: 'slaney', binFrequencies: 'fft', topDb: 80 } as const;

export const frontEnds: Readonly<Record<FrontEndName, FrontEnd>> = {
  // BadNets, JingleBack and the default for every model ([GNFT]): 16000 samples -> [101, 40].
  'mfcc-16k': spectralFrontEnd('mfcc-16k', { ...torchaudioMfcc, sampleRate: 16000, inputSamples: 16000, nFft: 400, hopLength: 160 }),
  // Ultrasonic ([GNFT] ultrasonic.py): 44100 samples -> [100, 40]. An odd nFft (1103) pads 551 per side,
  // so torchaudio gives 1 + floor(44099 / 441) = 100 frames, not the 101 attacks.md states.
  'mfcc-44k': spectralFrontEnd('mfcc-44k', { ...torchaudioMfcc, sampleRate: 44100, inputSamples: 44100, nFft: 1103, hopLength: 441 }),
  // DABA ([GNFT] daba_injection_tools.py: librosa.feature.mfcc(y, sr=16000, n_mfcc=40)): n_fft 2048,
  // hop 512, 128 mels -> [32, 40].
  'mfcc-librosa': spectralFrontEnd('mfcc-librosa', {
    ...librosaMel,
    sampleRate: 16000,
    inputSamples: 16000,
    nFft: 2048,
    hopLength: 512,
    nMels: 128,
    nMfcc: 40,
  }),
  // KWT as Torch-KWT computes it (librosa melspectrogram(n_mels=40, n_fft=480, hop_length=160,
  // center=False) -> power_to_db -> mfcc(n_mfcc=40)): 30 ms window, 10 ms hop -> [98, 40], i.e. KWT's
  // 40x98 stored time-major so each row is one token.
  'mfcc-kwt': spectralFrontEnd('mfcc-kwt', {
    ...librosaMel,
    center: false,
    sampleRate: 16000,
    inputSamples: 16000,
    nFft: 480,
    hopLength: 160,
    nMels: 40,
    nMfcc: 40,
  }),
  // FlowMur ([FM] parameters.py, [GNFT] flowmur.py; attacks.md section 0): torchaudio MFCC at 16 kHz with
  // n_fft 2048, hop 512, 128 mels, 13 coefficients -> [32, 13].
  'mfcc-flowmur': spectralFrontEnd('mfcc-flowmur', { ...torchaudioMfcc, sampleRate: 16000, inputSamples: 16000, nFft: 2048, hopLength: 512, nMfcc: 13 }),
  // Log-mel: torchaudio MelSpectrogram(n_fft 400, hop 160, n_mels 40) -> AmplitudeToDB('power', top_db=80).
  // 40 mels so it is a drop-in [101, 40] input for every MFCC model.
  'logmel-16k': spectralFrontEnd('logmel-16k', {
    ...torchaudioMfcc,
    nMfcc: undefined,
    nMels: 40,
    sampleRate: 16000,
    inputSamples: 16000,
    nFft: 400,
    hopLength: 160,
  }),
  // EAT: raw 16 kHz waveform padded (zeros at the end) or cropped to 2^14 = 16384 samples.
  'waveform-16k': waveformFrontEnd('waveform-16k', 16000, 16000, 16384),
  // EAT at 44.1 kHz, for the Ultrasonic attack's 21 kHz tone: 44100 samples padded to 44288 = 173 * 256 (EAT
  // down-samples by 256 in all, so its input must be a multiple of 256).
  'waveform-44k': waveformFrontEnd('waveform-44k', 44100, 44100, 44288),
  // The clip itself, one second at 16 kHz: the input of a user's own model (kwshield import) that computes
  // its features inside, as trained in PyTorch on Speech Commands clips read at their length. Not EAT's
  // 16384, so that the model sees exactly the samples it sees in PyTorch.
  'waveform-16k-1s': waveformFrontEnd('waveform-16k-1s', 16000, 16000, 16000),
};

export const frontEndNames = Object.keys(frontEnds) as FrontEndName[];

export function isFrontEndName(name: string): name is FrontEndName {
  return Object.hasOwn(frontEnds, name);
}

/** The registered front-end called `name`; throws listing the valid names otherwise. */
export function getFrontEnd(name: string): FrontEnd {
  if (!isFrontEndName(name)) throw new Error(`unknown front-end '${name}'; valid front-ends: ${frontEndNames.join(', ')}`);
  return frontEnds[name];
}

/** torchaudio-compatible MFCC at 16 kHz: [batch, 16000] -> [batch, 101, 40]. */
export const mfcc16k = (wave: Tensor): Tensor => frontEnds['mfcc-16k'].apply(wave);

/**
 * Runs a front-end over many clips [N, inputSamples] in batches (each in its own scope, so peak memory
 * is one batch's intermediates) and concatenates the results. Wrap it in noGrad() when caching features.
 */
export function applyInBatches(frontEnd: FrontEnd, waves: Tensor, opts: { batchSize?: number } = {}): Tensor {
  const batchSize = opts.batchSize ?? 256;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new RangeError(`applyInBatches: batchSize must be a positive integer, got ${batchSize}`);
  const n = waves.size(0);
  if (n <= batchSize) return tidy(() => frontEnd.apply(waves));
  return tidy(() => {
    const parts: Tensor[] = [];
    for (let start = 0; start < n; start += batchSize) {
      parts.push(tidy(() => frontEnd.apply(narrow(waves, 0, start, Math.min(batchSize, n - start)))));
    }
    return cat(parts, 0);
  });
}
