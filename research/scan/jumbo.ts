// Jumbo: a random trigger per seed, for the shadow models a meta-classifier scan learns from (MNTD's "jumbo
// learning", Xu et al., IEEE S&P 2021, section IV-B: shadow backdoors drawn from a broad distribution of
// trigger shapes, targets and poison rates, so that the detector learns what backdoors share, not one attack).
// It is not one of the seven evaluated attacks and must not imitate them: the defender draws it, knowing none.
// Each seed fixes one additive waveform pattern: a band-limited noise burst, a pure tone, a linear chirp or a
// click train; 40-400 ms long at a random place, peak 0.02-0.3 (the draw is ours, named here; MNTD's image
// jumbo draws mask sizes and patterns alike). Same trigger at training and test time.

import { dirtyLabelPlan } from '../../src/attacks/poison-plan.ts';
import { registerAttack } from '../../src/attacks/registry.ts';
import { baseArtifact, makeTrigger } from '../../src/attacks/trigger.ts';
import type { AttackSpec, TriggerArtifact } from '../../src/attacks/types.ts';
import type { FrontEnd } from '../../src/audio/frontends.ts';
import { createRng, deriveSeed } from '../../src/data/rng.ts';
import { resolveOptions } from '../../src/options/options.ts';
import { add, tensor } from '../../src/torch/index.ts';

const kinds = ['noise', 'tone', 'chirp', 'clicks'] as const;
export type JumboKind = (typeof kinds)[number];

export const jumboOptions = {
  kind: { type: 'enum', default: 'random', values: ['random', ...kinds], help: 'the pattern family; random draws one from the seed' },
} as const;

/** What one seed draws; times in seconds, frequencies in Hz (kept in the artifact so a run can be read back). */
export interface JumboPattern {
  kind: JumboKind;
  start: number;
  length: number;
  peak: number;
  /** tone frequency, chirp start, or the noise band's centre */
  f0: number;
  /** chirp end, or the noise band's width */
  f1: number;
  /** clicks per second (clicks only) */
  rate: number;
}

/** The pattern of a seed. Frequencies stay under 7 kHz so the trigger survives every 16 kHz front-end. */
export function drawJumbo(seed: number, kind: JumboKind | 'random'): JumboPattern {
  const rng = createRng(deriveSeed(seed, 'jumbo', 'pattern'));
  const chosen = kind === 'random' ? rng.pick(kinds) : kind;
  const length = rng.uniform(0.04, 0.4);
  return {
    kind: chosen,
    length,
    start: rng.uniform(0, 1 - length),
    peak: rng.uniform(0.02, 0.3),
    f0: rng.uniform(200, 6000),
    f1: rng.uniform(200, 6000),
    rate: rng.uniform(10, 80),
  };
}

/** The pattern as `samples` samples at `sampleRate` (noise from its own seeded stream, so it is fixed per seed). */
export function jumboWave(p: JumboPattern, seed: number, sampleRate: number, samples: number): Float32Array {
  const out = new Float32Array(samples);
  const first = Math.round(p.start * sampleRate);
  const count = Math.min(samples - first, Math.round(p.length * sampleRate));
  const noise = createRng(deriveSeed(seed, 'jumbo', 'noise'));
  let phase = 0;
  let low = 0;
  let lower = 0;
  for (let i = 0; i < count; i++) {
    const t = i / sampleRate;
    let v: number;
    if (p.kind === 'tone') v = Math.sin(2 * Math.PI * p.f0 * t);
    else if (p.kind === 'chirp') {
      phase += (2 * Math.PI * (p.f0 + ((p.f1 - p.f0) * i) / count)) / sampleRate;
      v = Math.sin(phase);
    } else if (p.kind === 'clicks') v = i % Math.max(1, Math.round(sampleRate / p.rate)) < 3 ? 1 : 0;
    else {
      // A band of noise: white noise minus two one-pole low-passes (cut-offs f0 +- f1/2), scaled to peak 1 below.
      const white = noise.normal();
      low += (1 - Math.exp((-2 * Math.PI * (p.f0 + p.f1 / 2)) / sampleRate)) * (white - low);
      lower += (1 - Math.exp((-2 * Math.PI * Math.max(50, p.f0 - p.f1 / 2)) / sampleRate)) * (white - lower);
      v = low - lower;
    }
    out[first + i] = v;
  }
  let peak = 0;
  for (const v of out) peak = Math.max(peak, Math.abs(v));
  if (peak > 0) for (let i = 0; i < out.length; i++) out[i] *= p.peak / peak;
  return out;
}

export const jumbo: AttackSpec = {
  name: 'jumbo',
  description: "Jumbo (MNTD's shadow backdoors): a random noise burst, tone, chirp or click train per seed, for training a meta-classifier scan",
  domain: 'waveform',
  labelMode: 'dirty',
  options: jumboOptions,
  frontEndFor: (_kind, modelDefault) => modelDefault,
  frontEndProblem: (_frontEnd: FrontEnd) => null,
  async prepare(ctx) {
    const options = resolveOptions('jumbo', jumboOptions, ctx.options);
    const artifact = baseArtifact('jumbo', options, ctx.seed, ctx.frontEnd.name);
    artifact.data = { pattern: drawJumbo(ctx.seed, options.kind as JumboKind | 'random') };
    const target = ctx.classes[ctx.targetLabel];
    return {
      plan: dirtyLabelPlan({ attack: 'jumbo', labels: ctx.train.labels, target, targetLabel: ctx.targetLabel, poisonRatio: ctx.poisonRatio, seed: ctx.seed }),
      artifact,
    };
  },
  trigger(artifact: TriggerArtifact, phase, frontEnd) {
    const wave = jumboWave(artifact.data.pattern as JumboPattern, artifact.seed, frontEnd.sampleRate, frontEnd.inputSamples);
    return makeTrigger(artifact, phase, 'waveform', (batch) => add(batch, tensor(wave, [1, wave.length])));
  },
};

registerAttack(jumbo);
