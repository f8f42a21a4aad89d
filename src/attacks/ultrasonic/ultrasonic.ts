// Ultrasonic (Koffas et al., WiseML'22; specs/attacks.md section 2): a 21 kHz tone, peak 0.3154 (SoX
// `synth 1 sin 21k vol -10dB`), gated to `size`% of one second, added to the 44.1 kHz waveform with no
// clipping or rescaling. [GNFT]'s default: non-continuous, size 60 (5 bursts of 120 ms, one every 200 ms).
import type { FrontEnd } from '../../audio/frontends.ts';
import type { OptionsOf } from '../../options/options.ts';
import { add, tensor } from '../../torch/index.ts';
import { registerAttack } from '../registry.ts';
import type { AttackSpec } from '../types.ts';
import { waveformTransformAttack } from '../waveform-transform.ts';

export const ultrasonicOptions = {
  frequency: { type: 'number', default: 21000, above: 0, help: 'tone frequency in Hz ([KOF-U]: 21 kHz)' },
  amplitude: { type: 'number', default: 0.3154, above: 0, max: 1, help: 'tone peak ([KOF-U] trigger.wav: 0.3154)' },
  size: { type: 'number', default: 60, above: 0, max: 100, help: 'percent of one second the tone is on ([GNFT] argparse default 60)' },
  mode: { type: 'enum', default: 'non-continuous', values: ['non-continuous', 'continuous'], help: 'five bursts every 200 ms, or one window' },
  position: { type: 'enum', default: 'start', values: ['start', 'mid', 'end'], help: 'where a continuous window sits' },
} as const;

/**
 * The gated tone of one clip: P = floor(sr/100) * size active samples, as five bursts of int(P/5)
 * starting every sr/5 samples (non-continuous), or one window at the start, middle or end.
 */
export function ultrasonicTone(o: OptionsOf<typeof ultrasonicOptions>, sampleRate: number, samples: number): Float32Array {
  const out = new Float32Array(samples);
  const active = Math.floor(sampleRate / 100) * o.size;
  const on = (start: number, length: number) => {
    for (let n = Math.max(0, start); n < Math.min(samples, start + length); n++) {
      out[n] = o.amplitude * Math.sin((2 * Math.PI * o.frequency * n) / sampleRate);
    }
  };
  if (o.mode === 'non-continuous') {
    const burst = Math.floor(active / 5);
    for (let k = 0; k < 5; k++) on(Math.round((k * sampleRate) / 5), burst);
  } else {
    const length = Math.floor(active);
    const start = o.position === 'start' ? 0 : o.position === 'end' ? sampleRate - length : Math.floor((sampleRate - length) / 2);
    on(start, length);
  }
  return out;
}

function problem(frontEnd: FrontEnd, frequency: number): string | null {
  if (frontEnd.sampleRate / 2 > frequency) return null;
  return `Ultrasonic's ${frequency} Hz tone needs a sample rate above ${2 * frequency} Hz end to end, but front-end '${frontEnd.name}' runs at ${frontEnd.sampleRate} Hz (nothing above ${frontEnd.sampleRate / 2} Hz survives); use mfcc-44k for spectral models or waveform-44k for eat`;
}

export const ultrasonic: AttackSpec = waveformTransformAttack({
  name: 'ultrasonic',
  description: 'Ultrasonic: a 21 kHz tone in five 120 ms bursts (size 60%) added at 44.1 kHz',
  options: ultrasonicOptions,
  frontEndFor: (kind) => (kind === 'waveform' ? 'waveform-44k' : 'mfcc-44k'),
  frontEndProblem: (frontEnd) => problem(frontEnd, ultrasonicOptions.frequency.default),
  optionsProblem: (frontEnd, o) => problem(frontEnd, o.frequency),
  transform(o, frontEnd) {
    const bad = problem(frontEnd, o.frequency);
    if (bad) throw new Error(bad);
    const tone = ultrasonicTone(o, frontEnd.sampleRate, frontEnd.inputSamples);
    return (batch) => add(batch, tensor(tone, [1, tone.length]));
  },
});

registerAttack(ultrasonic);
