// JingleBack's trigger styles (Koffas et al., ICASSP'23): each style is a pedalboard effect chain applied to the whole
// clip (specs/attacks.md §3). The effects are written from the spec's per-sample equations, which paraphrase the JUCE
// dsp classes pedalboard wraps; they run in float64 and store float32.
import { tensor, tidy } from '../../torch/index.ts';
import { pitchShift } from './pitch-shift.ts';

/** x scaled by db decibels. */
export function gain(x: Float32Array, db: number): Float32Array {
  const factor = 10 ** (db / 20);
  return x.map((v) => factor * v);
}

/** pedalboard's Distortion: tanh(10^(driveDb/20) x) (spec §3, style 1). */
export function distortion(x: Float32Array, driveDb: number): Float32Array {
  const drive = 10 ** (driveDb / 20);
  return x.map((v) => Math.tanh(drive * v));
}

export type LadderMode = 'HPF12' | 'LPF12';

export interface LadderFilterOptions {
  mode?: LadderMode;
  cutoffHz?: number;
  /** 0..1; mapped linearly onto the internal feedback r in [0.1, 1] (JUCE LadderFilter::updateResonance). */
  resonance?: number;
  /** >= 1: input saturation drive. */
  drive?: number;
}

// JingleBack style 5 (spec §3); pedalboard's own LadderFilter default is LPF12 / 200 Hz.
const LADDER_DEFAULTS: Required<LadderFilterOptions> = { mode: 'HPF12', cutoffHz: 1000, resonance: 0, drive: 1 };

// Output taps on the stage outputs (a, b, c, d, e), times the ladder's fixed output gain 1.2, and the input
// compensation in the feedback path; HPF12 has none, so its feedback is exactly the spec's a = dx - 4 r gain2 tanh(s4).
const LADDER_MODES: Record<LadderMode, { taps: readonly number[]; compensation: number }> = {
  HPF12: { taps: [1.2, -2.4, 1.2, 0, 0], compensation: 0 },
  LPF12: { taps: [0, 0, 1.2, 0, 0], compensation: 0.5 },
};

/** Level compensation for a saturating drive: JUCE LadderFilter's empirical fit, 1.0006 at drive 1 (spec §3). */
const driveGain = (drive: number) => 0.6103 * drive ** -2.642 + 0.3903;

/** A four-stage transistor-ladder filter (JUCE LadderFilter, as pedalboard's LadderFilter), spec §3 style 5. */
export function ladderFilter(x: Float32Array, sampleRate: number, opts: LadderFilterOptions = {}): Float32Array {
  const { mode, cutoffHz, resonance, drive } = { ...LADDER_DEFAULTS, ...opts };
  if (!(drive >= 1)) throw new RangeError(`ladderFilter: drive must be >= 1, got ${drive}`);
  if (!(resonance >= 0 && resonance <= 1)) throw new RangeError(`ladderFilter: resonance must be in [0, 1], got ${resonance}`);
  const setup = LADDER_MODES[mode];
  if (!setup) throw new RangeError(`ladderFilter: unknown mode '${mode}' (known: ${Object.keys(LADDER_MODES).join(', ')})`);
  const [w0, w1, w2, w3, w4] = setup.taps;
  const comp = setup.compensation;
  const a1 = Math.exp((-2 * Math.PI * cutoffHz) / sampleRate);
  const g = 1 - a1;
  const b0 = 0.76923 * g;
  const b1 = 0.23077 * g;
  const r = 0.1 + 0.9 * resonance;
  const inputGain = driveGain(drive);
  // The feedback saturator is driven a little harder as drive rises (JUCE: drive2 = 0.04 drive + 0.96).
  const feedbackDrive = 0.04 * drive + 0.96;
  const feedbackGain = driveGain(feedbackDrive);
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let s4 = 0;
  const out = new Float32Array(x.length);
  for (let n = 0; n < x.length; n++) {
    const dx = inputGain * Math.tanh(drive * x[n]);
    const a = dx - 4 * r * (feedbackGain * Math.tanh(feedbackDrive * s4) - comp * dx);
    const b = b1 * s0 + a1 * s1 + b0 * a;
    const c = b1 * s1 + a1 * s2 + b0 * b;
    const d = b1 * s2 + a1 * s3 + b0 * c;
    const e = b1 * s3 + a1 * s4 + b0 * d;
    s0 = a;
    s1 = b;
    s2 = c;
    s3 = d;
    s4 = e;
    out[n] = w0 * a + w1 * b + w2 * c + w3 * d + w4 * e;
  }
  return out;
}

/** The settings JUCE's LFO effects (Phaser, Chorus) share; each adds its own depth and centre. */
interface LfoEffectOptions {
  rateHz?: number;
  /** -1..1; the last wet sample times this is subtracted from the input (Chorus: the delay line's), as JUCE does. */
  feedback?: number;
  /** 0 dry .. 1 wet, linear. */
  mix?: number;
}

export interface PhaserOptions extends LfoEffectOptions {
  /** 0..1: the LFO swings the log-frequency sweep position by +-depth/2. */
  depth?: number;
  centreHz?: number;
}

// pedalboard's Phaser defaults, which are also JingleBack style 5's settings (spec §3).
const PHASER_DEFAULTS: Required<PhaserOptions> = { rateHz: 1, depth: 0.5, centreHz: 1300, feedback: 0, mix: 0.5 };
const PHASER_STAGES = 6;
/** Samples between sweep updates (JUCE Phaser runs its LFO at a quarter of the sample rate). */
const PHASER_UPDATE_INTERVAL = 4;

/** Six first-order TPT all-pass stages swept by a sine LFO on a log-frequency scale (JUCE Phaser), spec §3 style 5. */
export function phaser(x: Float32Array, sampleRate: number, opts: PhaserOptions = {}): Float32Array {
  const { rateHz, depth, centreHz, feedback, mix } = { ...PHASER_DEFAULTS, ...opts };
  const maxHz = Math.min(20000, 0.49 * sampleRate);
  const logSpan = Math.log10(maxHz / 20);
  const centre = Math.log10(centreHz / 20) / logSpan; // 0.699 for 1300 Hz at 16 kHz
  const swing = 0.5 * depth; // 0.25 at depth 0.5: the spec's c0 + 0.25 sin(phi)
  const state = new Float64Array(PHASER_STAGES);
  const out = new Float32Array(x.length);
  let coefficient = 0;
  let lastWet = 0;
  for (let n = 0; n < x.length; n++) {
    if (n % PHASER_UPDATE_INTERVAL === 0) {
      const phase = (2 * Math.PI * rateHz * n) / sampleRate; // start phase 0
      const position = Math.min(1, Math.max(0, centre + swing * Math.sin(phase)));
      const frequency = 20 * (maxHz / 20) ** position;
      const t = Math.tan((Math.PI * frequency) / sampleRate);
      coefficient = t / (1 + t);
    }
    let v = x[n] - feedback * lastWet;
    for (let k = 0; k < PHASER_STAGES; k++) {
      const u = coefficient * (v - state[k]);
      const lowpass = u + state[k];
      state[k] = lowpass + u;
      v = 2 * lowpass - v;
    }
    lastWet = v;
    out[n] = (1 - mix) * x[n] + mix * v;
  }
  return out;
}

export interface ChorusOptions extends LfoEffectOptions {
  /** LFO amplitude: the delay swings by +-10 * depth ms (JUCE Chorus: 20 ms maximum modulation x 0.5 volume). */
  depth?: number;
  centreDelayMs?: number;
}

// pedalboard's Chorus defaults (spec §3).
const CHORUS_DEFAULTS: Required<ChorusOptions> = { rateHz: 1, depth: 0.25, centreDelayMs: 7, feedback: 0, mix: 0.5 };
/** JUCE Chorus: the delay never goes below 1 ms. */
const CHORUS_MIN_DELAY_MS = 1;
const CHORUS_MODULATION_MS = 10;

/**
 * A sine-modulated, linearly interpolated delay line mixed with the dry signal (JUCE Chorus, as pedalboard's Chorus).
 * JingleBack's depth 5 lies outside JUCE's documented 0..1; JUCE only asserts that in debug builds, so it is used
 * as given here: a delay of max(1, centre +- 50) ms.
 */
export function chorus(x: Float32Array, sampleRate: number, opts: ChorusOptions = {}): Float32Array {
  const { rateHz, depth, centreDelayMs, feedback, mix } = { ...CHORUS_DEFAULTS, ...opts };
  const line = new Float64Array(x.length); // the whole clip is the delay line: no ring buffer needed offline
  const out = new Float32Array(x.length);
  let lastWet = 0;
  for (let n = 0; n < x.length; n++) {
    line[n] = x[n] - feedback * lastWet;
    const lfo = Math.sin((2 * Math.PI * rateHz * n) / sampleRate);
    const delayMs = Math.max(CHORUS_MIN_DELAY_MS, centreDelayMs + CHORUS_MODULATION_MS * depth * lfo);
    const position = n - (delayMs * sampleRate) / 1000;
    const i = Math.floor(position);
    const frac = position - i;
    const before = i >= 0 ? line[i] : 0;
    const after = i + 1 >= 0 ? line[i + 1] : 0;
    const wet = before + frac * (after - before);
    lastWet = wet;
    out[n] = (1 - mix) * x[n] + mix * wet;
  }
  return out;
}

/** The styles whose effects exist here; style 4 needs a Freeverb-style reverb, which does not. */
export const jingleStyles = [0, 1, 2, 3, 5] as const;
export type JingleStyle = (typeof jingleStyles)[number];

/** Applies JingleBack style `style` (specs/attacks.md §3 table) to a mono clip at `sampleRate`. */
export function jingleStyle(style: number, x: Float32Array, sampleRate: number): Float32Array {
  switch (style) {
    case 0:
      return shiftPitch(x, 10);
    case 1:
      return distortion(x, 30);
    case 2:
      return chorus(x, sampleRate, { rateHz: 1, depth: 5, centreDelayMs: 10, feedback: 0, mix: 0.5 });
    case 3:
      return chorus(distortion(shiftPitch(x, 10), 20), sampleRate, { rateHz: 1, depth: 5, centreDelayMs: 8, feedback: 0, mix: 0.5 });
    case 5: {
      const filtered = ladderFilter(gain(x, 12), sampleRate, { mode: 'HPF12', cutoffHz: 1000, resonance: 0, drive: 1 });
      return phaser(filtered, sampleRate, { rateHz: 1, depth: 0.5, centreHz: 1300, feedback: 0, mix: 0.5 });
    }
    default:
      throw new RangeError(
        `jingleStyle: style ${style} is not available (available: ${jingleStyles.join(', ')}; style 4 needs a reverb, which is not implemented)`,
      );
  }
}

// pedalboard's PitchShift is Rubber Band; a phase vocoder stands in for it (pitch-shift.ts).
function shiftPitch(x: Float32Array, semitones: number): Float32Array {
  return tidy(() => pitchShift(tensor(x, [1, x.length]), semitones).toFloat32Array());
}
