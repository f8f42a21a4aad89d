// The additive-sound probe: does some sound added to the defender's clean clips (a tone anywhere in the band, a
// chirp, a noise burst, clicks) send them to one class? The additive triggers of the audio backdoor literature add
// a sound to the clip and leave the words alone: an (ultrasonic) tone (Koffas et al., "Can you hear it?", 2022),
// a short natural or synthetic sound (DABA), a universal perturbation (FlowMur). A model trained on such a trigger
// reacts to sounds near it; a clean model of the same configuration has no reason to. The family is generic and
// dense rather than fitted to any attack: tones every third of an octave from 100 Hz up to 95% of the Nyquist
// frequency (so a 44.1 kHz model is probed above 20 kHz), at two levels; chirps over the whole band; noise bursts
// and clicks at the start, middle and end, at two levels each. Fixed before any measurement on a zoo
// (measured/scan/fresh-zoo-PLAN.md), never from an attack's settings.
//
// The statistic is the transform probe's (transform-probe.ts): rate(sound, c), the share of the clips of other
// classes that the model calls c after the sound, and the model's score is its largest excess over the references'
// rate for the same pair (a sound that sends clips to the attractor class in every model cancels out).
import { mixAtSnr, rms, whiteNoise } from '../audio/noise.ts';
import { createRng, deriveSeed } from '../data/rng.ts';
import type { ProbeFamily } from './probe-bank.ts';
import { type ProbeRates, type ProbeTransform, perRow, ratesFamily, tone } from './transform-probe.ts';

/** Where a short sound is centred, as a share of the clip. */
const positions = { start: 0.15, middle: 0.5, end: 0.85 } as const;

/** Tone frequencies: every third of an octave from 100 Hz below 95% of Nyquist, then 95% of Nyquist itself. */
export function probeToneFrequencies(sampleRate: number): number[] {
  const top = 0.95 * (sampleRate / 2);
  const out: number[] = [];
  for (let k = 0; 100 * 2 ** (k / 3) < top; k++) out.push(Math.round(100 * 2 ** (k / 3)));
  return [...out, Math.round(top)];
}

/** A sweep of the instantaneous frequency from f0 to f1 over `length` samples, unit amplitude. */
export function chirp(length: number, f0: number, f1: number, sampleRate: number): Float32Array {
  let phase = 0;
  return Float32Array.from({ length }, (_, i) => {
    const v = Math.sin(phase);
    phase += (2 * Math.PI * (f0 + ((f1 - f0) * i) / Math.max(1, length - 1))) / sampleRate;
    return v;
  });
}

/**
 * x plus `sound` centred at `centre` (a share of the clip, cut at the clip's ends), scaled so that the sound's RMS
 * is the clip's RMS times 10^(-db / 20): 0 dB is as loud as the clip, 20 dB a tenth of its amplitude.
 */
export function addSoundAt(x: Float32Array, sound: Float32Array, centre: number, db: number): Float32Array {
  const start = Math.round(centre * x.length - sound.length / 2);
  const from = Math.max(0, start);
  const to = Math.min(x.length, start + sound.length);
  const scale = (rms(x) * 10 ** (-db / 20)) / (rms(sound) || 1);
  const out = x.slice();
  for (let i = from; i < to; i++) out[i] += scale * sound[i - start];
  return out;
}

/** Impulses of one sample every `everyMs`, starting at the first sample, `length` samples. */
function clickTrain(length: number, sampleRate: number, everyMs: number): Float32Array {
  const out = new Float32Array(length);
  const step = Math.max(1, Math.round((everyMs * sampleRate) / 1000));
  for (let i = 0; i < length; i += step) out[i] = 1;
  return out;
}

/**
 * The additive sounds for clips at `sampleRate`: tones at 20 and 0 dB below the clip, whole clip; an up and a down
 * chirp over 100 Hz to 95% of Nyquist, whole clip, 10 dB; a 200 ms up-chirp, 100 ms white-noise bursts (0 and 10 dB) and
 * single clicks (1 ms, 20 and 10 dB louder than the clip) at the start, middle and end; click trains of 10 per second at 0 and
 * 10 dB. Seeded noise is drawn per row of the forward batch, so every model hears the same clips.
 */
export function additiveSounds(sampleRate: number, seed = 0): ProbeTransform[] {
  const top = 0.95 * (sampleRate / 2);
  const ms = (n: number) => Math.max(1, Math.round((n * sampleRate) / 1000));
  const rowOp = (name: string, f: (x: Float32Array, row: number) => Float32Array): ProbeTransform => ({ name, apply: perRow((x, _sr, r) => f(x, r)) });
  const whole = (sound: (length: number) => Float32Array, db: number) => (x: Float32Array) => mixAtSnr(x, sound(x.length), db);
  const sounds: ProbeTransform[] = [];
  for (const hz of probeToneFrequencies(sampleRate)) {
    for (const db of [20, 0])
      sounds.push(
        rowOp(
          `tone${hz}@${db}dB`,
          whole((n) => tone(n, hz, sampleRate), db),
        ),
      );
  }
  sounds.push(
    rowOp(
      'chirp-up@10dB',
      whole((n) => chirp(n, 100, top, sampleRate), 10),
    ),
  );
  sounds.push(
    rowOp(
      'chirp-down@10dB',
      whole((n) => chirp(n, top, 100, sampleRate), 10),
    ),
  );
  for (const [where, centre] of Object.entries(positions)) {
    sounds.push(rowOp(`chirp200ms-${where}@10dB`, (x) => addSoundAt(x, chirp(ms(200), 100, top, sampleRate), centre, 10)));
    for (const db of [0, 10]) {
      sounds.push(
        rowOp(`burst100ms-${where}@${db}dB`, (x, r) => addSoundAt(x, whiteNoise(ms(100), createRng(deriveSeed(seed, 'additive-burst', where, r))), centre, db)),
      );
    }
    // a click: two impulses 0.5 ms apart, their 1 ms 20 or 10 dB louder than the clip (a lone sample has almost no
    // energy in a 25 ms MFCC frame)
    for (const db of [-20, -10]) sounds.push(rowOp(`click-${where}@${db}dB`, (x) => addSoundAt(x, clickTrain(ms(1), sampleRate, 0.5), centre, db)));
  }
  for (const db of [0, 10])
    sounds.push(
      rowOp(
        `clicks10Hz@${db}dB`,
        whole((n) => clickTrain(n, sampleRate, 100), db),
      ),
    );
  return sounds;
}

/** The additive-sound probe as a probe family (probe-bank.ts), its sounds chosen by the clips' sample rate. */
export function additiveFamily(seed = 0): ProbeFamily<ProbeRates> {
  return ratesFamily(
    'additive',
    'additive sounds: tones every third of an octave up to 95% of Nyquist at two levels, chirps, noise bursts and clicks at three positions',
    (sampleRate) => additiveSounds(sampleRate, seed),
  );
}
