// Light augmentation of training batches: a random time shift and white noise, for training (the `fast`
// recipe) and for the fine-tuning defenses (their `augment` option), which share it so a defense can
// regularise with exactly what the victim trained with.
import type { FrontEnd } from '../audio/frontends.ts';
import { add, indexSelect, mean, mul, randnLike, roll, sqrt, type Tensor, tensor } from '../torch/index.ts';
import type { Rng } from './rng.ts';

/**
 * A random time shift (the same for every clip of a batch, wrapping around) and additive white noise.
 * Noise is given per input kind because one number cannot fit both: 0.05 is a light jitter on MFCC
 * values (tens of dB), but on the synthetic clips' waveforms (RMS 0.04) a std of 0.05 buried the
 * speech under noise louder than itself, which is how EAT trained before this split.
 */
export interface Augment {
  /** largest shift either way, in seconds */
  timeShiftSeconds: number;
  /** noise std on spectral features, in feature units */
  featureNoise: number;
  /** noise on waveforms, in dB below each clip's RMS (Infinity: none) */
  waveformSnrDb: number;
}

/** What the time axis (dim 1) of a training batch is, so augmentation can work in seconds. */
export interface InputTimeAxis {
  kind: 'features' | 'waveform';
  /** frames (or samples) per second along dim 1 */
  stepsPerSecond: number;
}

/** Dim 1 of a front-end's output: waveform samples, or spectral frames spread over the clip. */
export function timeAxisOf(frontEnd: FrontEnd): InputTimeAxis {
  if (frontEnd.outputShape.length === 1) return { kind: 'waveform', stepsPerSecond: frontEnd.sampleRate };
  return { kind: 'features', stepsPerSecond: frontEnd.outputShape[0] / (frontEnd.inputSamples / frontEnd.sampleRate) };
}

/** Without a front-end to ask (runs ask timeAxisOf): frames every 10 ms, as mfcc-16k, mfcc-44k and mfcc-kwt give them. */
export const defaultTimeAxis: InputTimeAxis = { kind: 'features', stepsPerSecond: 100 };

/** The `fast` training recipe's augmentation: 50 ms of shift either way (5 MFCC frames), noise 0.05 on features, 20 dB under the clip on waveforms. */
export const lightAugment: Augment = { timeShiftSeconds: 0.05, featureNoise: 0.05, waveformSnrDb: 20 };

/** Light augmentation of a training batch [B, T, ...] (see Augment), shifted by `shift` steps along time. */
export function augmentBatch(x: Tensor, aug: Augment, axis: InputTimeAxis, shift: number): Tensor {
  const shifted = shift !== 0 && x.ndim >= 2 ? roll(x, [shift], [1]) : x;
  if (axis.kind === 'features') return aug.featureNoise > 0 ? add(shifted, mul(randnLike(shifted), aug.featureNoise)) : shifted;
  if (!Number.isFinite(aug.waveformSnrDb)) return shifted;
  // Per-clip noise std = clip RMS / 10^(snr/20), with a floor so silent clips stay finite.
  const rms = sqrt(mean(mul(shifted, shifted), [1], true)).clamp(1e-8);
  return add(shifted, mul(randnLike(shifted), mul(rms, 10 ** (-aug.waveformSnrDb / 20))));
}

/** The shift of batch b in epoch `epoch`, in steps, in [-max, max]: fixed by (epoch, b) so a resumed run repeats it. */
export function batchShift(aug: Augment, axis: InputTimeAxis, epoch: number, b: number): number {
  const max = Math.round(aug.timeShiftSeconds * axis.stepsPerSecond);
  return max > 0 ? ((b * 7919 + epoch * 104729) % (2 * max + 1)) - max : 0;
}

/**
 * Each clip of a batch [B, T, ...] rolled along time (dim 1) by its own shift, drawn uniformly from the
 * integers in [-max, max], max = round(fraction * T); the clip stays at its index, so its label still holds.
 * The NFT and NGF paper recipes use it in place of their releases' RandomCrop(32, padding 4) +
 * RandomHorizontalFlip (docs/nft-ngf.md). The crop moves a CIFAR image by up to 4 of its 32 pixels (fraction
 * 0.125) on each axis; here only time moves (a shift along the MFCC coefficients would move energy between
 * unrelated coefficients; a waveform has only time). The crop's zero padding becomes a wrap-around (a zero
 * MFCC frame is not silence, and the ends of a one-second command clip are background, as in augmentBatch),
 * and there is no flip (speech played backwards is not the same word).
 */
export function randomTimeShift(x: Tensor, fraction: number, rng: Rng): Tensor {
  const [batch, steps] = x.shape;
  const max = Math.round(fraction * steps);
  if (max === 0 || x.ndim < 2) return x;
  const index = new BigInt64Array(batch * steps);
  for (let b = 0; b < batch; b++) {
    const shift = rng.int(2 * max + 1) - max;
    // output step t of clip b is input step t - shift (mod T), as roll(x, shift) gives
    for (let t = 0; t < steps; t++) index[b * steps + t] = BigInt(b * steps + ((((t - shift) % steps) + steps) % steps));
  }
  return indexSelect(x.reshape([batch * steps, -1]), 0, tensor(index)).reshape(x.shape);
}
