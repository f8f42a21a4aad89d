// DABA (Liu et al., ACM MM'22; specs/attacks.md section 4): a natural sound, gained to an absolute
// loudness and overlaid on the host from t = 0. Training hosts get levels from {0, -5, ..., -40} dBFS;
// test clips get -20 dBFS. Both selection steps of the [GNFT] port run on a clean surrogate (the clean model
// of the same configuration: the original DABA intends a trained benign model, [GNFT] used an untrained one):
//   Cer: the pool clip whose prediction has the lowest entropy becomes the trigger;
//   Inf: among up to 3,000 non-target training clips, the round(ratio * N) hosts whose prediction with the
//        trigger at -20 dBFS is closest (binary cross-entropy) to the trigger's own prediction.
// The pool is a folder of WAV clips the user gives; by default a generated pool of music-like clips
// (src/audio/effects/music.ts) stands in for the original music snippets, whose archive could not be opened.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { musicPool } from '../../audio/effects/index.ts';
import type { FrontEnd } from '../../audio/frontends.ts';
import { resample } from '../../audio/resample.ts';
import { readWav } from '../../audio/wav.ts';
import { createRng, deriveSeed } from '../../data/rng.ts';
import type { KwsModel } from '../../models/registry.ts';
import { type OptionsOf, resolveOptions } from '../../options/options.ts';
import { add, cat, clamp, keep, log, mul, noGrad, softmax, type Tensor, tensor, tidy } from '../../torch/index.ts';
import { needs16k } from '../needs-16k.ts';
import { chosenHostsPlan, hostCount } from '../poison-plan.ts';
import { registerAttack } from '../registry.ts';
import { artifactOptions, baseArtifact, makeTrigger } from '../trigger.ts';
import type { AttackContext, AttackSpec } from '../types.ts';

export const dabaOptions = {
  pool: { type: 'string', default: 'generated', help: "a folder of WAV clips (natural sounds), or 'generated' for the project's music-like stand-in" },
  poolSize: { type: 'integer', default: 60, min: 1, help: 'clips in the generated pool ([GNFT] trigger_pool: 60)' },
  testLevel: { type: 'number', default: -20, max: 0, help: 'trigger loudness at test time, dBFS ([GNFT]: -20)' },
  trainLevelMin: { type: 'number', default: -40, max: 0, help: 'quietest training level, dBFS ([GNFT] variants 0..-40)' },
  trainLevelStep: { type: 'number', default: 5, above: 0, help: 'step between training levels, dB ([GNFT]: 5, nine variants)' },
  selectionLevel: { type: 'number', default: -20, max: 0, help: 'level of the trigger while ranking hosts, dBFS ([GNFT]: -20)' },
  candidates: { type: 'integer', default: 3000, min: 1, help: 'non-target training clips the host selection considers ([GNFT]: 3000)' },
  selection: {
    type: 'enum',
    default: 'cer&inf',
    values: ['cer&inf', 'cer', 'random'],
    help: "'cer&inf' (DABA), 'cer' (trigger by certainty, random hosts), 'random'",
  },
} as const;

const SAMPLE_RATE = 16000;

/** 20 log10(RMS): loudness of float audio in [-1, 1] as pydub's dBFS. */
export function dbfs(samples: Float32Array): number {
  let sum = 0;
  for (const v of samples) sum += v * v;
  return 10 * Math.log10(Math.max(sum / Math.max(1, samples.length), 1e-20));
}

/** The training levels: 0, -step, ..., down to the minimum ([GNFT]: 0..-40 in 5 dB steps). */
export function trainingLevels(o: OptionsOf<typeof dabaOptions>): number[] {
  const levels: number[] = [];
  for (let l = 0; l >= o.trainLevelMin - 1e-9; l -= o.trainLevelStep) levels.push(l);
  return levels;
}

/** Overlay of `trigger` gained to `levelDb` dBFS onto each clip from t = 0, saturating at [-1, 1] (pydub's int16 overlay). */
function overlay(batch: Tensor, trigger: Float32Array, levels: readonly number[]): Tensor {
  return tidy(() => {
    const samples = batch.size(1);
    const base = new Float32Array(samples);
    base.set(trigger.subarray(0, samples));
    const own = dbfs(trigger);
    const gains = tensor(
      Float32Array.from(levels, (l) => 10 ** ((l - own) / 20)),
      [levels.length, 1],
    );
    return clamp(add(batch, mul(tensor(base, [1, samples]), gains)), -1, 1);
  });
}

/** WAV files under `dir`, read as 1 s clips at 16 kHz; unreadable ones are counted, not fatal. */
export async function readPool(dir: string): Promise<{ clips: Float32Array[]; names: string[]; skipped: string[] }> {
  let files: string[];
  try {
    const walk = (d: string): string[] =>
      readdirSync(d)
        .sort()
        .flatMap((e) => {
          const full = path.join(d, e);
          return statSync(full).isDirectory() ? walk(full) : e.toLowerCase().endsWith('.wav') ? [full] : [];
        });
    files = walk(dir);
  } catch (e) {
    throw new Error(
      `DABA pool folder ${dir} cannot be read (${(e as Error).message}); give a folder of WAV clips with -o pool=DIR, or leave pool unset for the generated pool`,
    );
  }
  const clips: Float32Array[] = [];
  const names: string[] = [];
  const skipped: string[] = [];
  for (const file of files) {
    try {
      const wav = await readWav(file);
      const mono = wav.sampleRate === SAMPLE_RATE ? wav.samples : resample(wav.samples, wav.sampleRate, SAMPLE_RATE);
      const clip = new Float32Array(SAMPLE_RATE);
      clip.set(mono.subarray(0, SAMPLE_RATE));
      if (dbfs(clip) < -90) throw new Error('silent');
      clips.push(clip);
      names.push(path.relative(dir, file));
    } catch (e) {
      skipped.push(`${path.relative(dir, file)} (${(e as Error).message})`);
    }
  }
  if (clips.length === 0) {
    throw new Error(
      `DABA pool folder ${dir} has no readable clips (${files.length} .wav files${skipped.length ? `, unreadable: ${skipped.slice(0, 3).join('; ')}` : ''}); give a folder of WAV clips, or leave pool unset for the generated pool`,
    );
  }
  return { clips, names, skipped };
}

/** Softmax of the surrogate over waveforms [n, samples] (in batches, eval mode). */
function predictProbabilities(surrogate: KwsModel, frontEnd: FrontEnd, waves: Tensor): Tensor {
  surrogate.eval();
  return noGrad(() =>
    tidy(() => {
      const parts: Tensor[] = [];
      const n = waves.size(0);
      for (let s = 0; s < n; s += 128) parts.push(tidy(() => softmax(surrogate.forward(frontEnd.apply(waves.narrow(0, s, Math.min(128, n - s)))), 1)));
      return parts.length === 1 ? parts[0] : cat(parts, 0);
    }),
  );
}

async function selectTriggerAndHosts(ctx: AttackContext, o: OptionsOf<typeof dabaOptions>, pool: Float32Array[]) {
  const surrogate = ctx.surrogate;
  if (!surrogate && o.selection !== 'random')
    throw new Error("daba's selection needs a clean surrogate model: run it through attackRun (kwshield attack), or use -o selection=random");
  const rng = createRng(deriveSeed(ctx.seed, 'daba', 'selection'));
  const nonTarget = ctx.train.labels.flatMap((l, i) => (l === ctx.targetLabel ? [] : [i]));
  const count = Math.min(hostCount(ctx.poisonRatio, ctx.train.labels.length), nonTarget.length);
  if (o.selection === 'random' || !surrogate) {
    return { triggerIndex: rng.int(pool.length), entropy: null, hosts: rng.shuffle([...nonTarget]).slice(0, count), scores: null };
  }
  // Cer: the pool clip the surrogate is most certain about.
  const poolWaves = tensor(concat(pool), [pool.length, SAMPLE_RATE]);
  const entropies = tidy(() => {
    const p = predictProbabilities(surrogate, ctx.frontEnd, poolWaves);
    return mul(p, log(p.clamp(1e-12)).div(Math.LN2))
      .sum(1)
      .neg()
      .toArray();
  });
  poolWaves.dispose();
  const triggerIndex = entropies.indexOf(Math.min(...entropies));
  if (o.selection === 'cer') return { triggerIndex, entropy: entropies[triggerIndex], hosts: rng.shuffle([...nonTarget]).slice(0, count), scores: null };
  // Inf: hosts whose triggered prediction is closest to the trigger's own prediction.
  const candidates = rng.shuffle([...nonTarget]).slice(0, Math.max(count, o.candidates));
  const trigger = pool[triggerIndex];
  const scores: number[] = [];
  const alone = predictProbabilities(surrogate, ctx.frontEnd, tensor(trigger, [1, SAMPLE_RATE]));
  keep(alone);
  try {
    for (let s = 0; s < candidates.length; s += 256) {
      const chunk = candidates.slice(s, s + 256);
      const waves = await ctx.train.loadWaves(chunk);
      const ce = tidy(() => {
        const y = predictProbabilities(
          surrogate,
          ctx.frontEnd,
          overlay(
            waves,
            trigger,
            chunk.map(() => o.selectionLevel),
          ),
        );
        const a = alone.clamp(1e-7, 1 - 1e-7);
        // [GNFT] daba_selection_tools: sum_c [-y_c log a_c - (1 - y_c) log(1 - a_c)]
        return mul(y, log(a))
          .add(mul(y.neg().add(1), log(a.neg().add(1))))
          .sum(1)
          .neg()
          .toArray();
      });
      waves.dispose();
      scores.push(...ce);
      ctx.onProgress?.('daba host selection', Math.min(s + 256, candidates.length), candidates.length);
    }
  } finally {
    alone.dispose();
  }
  const order = candidates.map((c, k) => [c, scores[k]] as const).sort((a, b) => a[1] - b[1] || a[0] - b[0]);
  return { triggerIndex, entropy: entropies[triggerIndex], hosts: order.slice(0, count).map(([c]) => c), scores: order.slice(0, count).map(([, v]) => v) };
}

function concat(clips: Float32Array[]): Float32Array {
  const out = new Float32Array(clips.length * SAMPLE_RATE);
  clips.forEach((c, i) => out.set(c.subarray(0, SAMPLE_RATE), i * SAMPLE_RATE));
  return out;
}

export const daba: AttackSpec<typeof dabaOptions> = {
  name: 'daba',
  description: 'DABA: a natural-sound trigger at an absolute loudness (0..-40 dBFS in training, -20 at test), chosen by certainty, hosts by influence',
  domain: 'waveform',
  labelMode: 'dirty',
  options: dabaOptions,
  needs: { surrogate: true },
  async check(options) {
    if (options.pool !== 'generated') await readPool(options.pool);
  },
  frontEndFor: (kind) => (kind === 'waveform' ? 'waveform-16k' : 'mfcc-librosa'),
  frontEndProblem: (frontEnd) => needs16k('DABA', frontEnd, 'use mfcc-librosa (spectral models) or waveform-16k (eat)'),
  async prepare(ctx) {
    const o = resolveOptions('daba', dabaOptions, ctx.options);
    const bad = needs16k('DABA', ctx.frontEnd, 'use mfcc-librosa or waveform-16k');
    if (bad) throw new Error(bad);
    let pool: Float32Array[];
    let names: string[];
    let skipped: string[] = [];
    if (o.pool === 'generated') {
      pool = musicPool(o.poolSize, createRng(deriveSeed(ctx.seed, 'daba', 'pool'))).map((c) => c.samples);
      names = pool.map((_, i) => `generated-${i}`);
    } else {
      ({ clips: pool, names, skipped } = await readPool(o.pool));
    }
    const selected = await selectTriggerAndHosts(ctx, o, pool);
    const target = ctx.classes[ctx.targetLabel];
    const plan = chosenHostsPlan(
      { attack: 'daba', labels: ctx.train.labels, target, targetLabel: ctx.targetLabel, poisonRatio: ctx.poisonRatio, seed: ctx.seed },
      selected.hosts,
    );
    // One training level per host: a seeded permutation index mod the number of levels ([GNFT] daba.py).
    const levels = trainingLevels(o);
    const permutation = createRng(deriveSeed(ctx.seed, 'daba', 'levels')).shuffle(plan.indices.map((_, k) => k));
    const hostLevels: Record<string, number> = {};
    plan.indices.forEach((host, k) => {
      hostLevels[host] = levels[permutation[k] % levels.length];
    });
    const artifact = baseArtifact('daba', o, ctx.seed, ctx.frontEnd.name);
    artifact.tensors.set('trigger', tensor(pool[selected.triggerIndex], [SAMPLE_RATE]));
    artifact.data = {
      poolSource: o.pool,
      poolClips: pool.length,
      poolSkipped: skipped,
      selectedClip: names[selected.triggerIndex],
      entropyBits: selected.entropy,
      triggerDbfs: dbfs(pool[selected.triggerIndex]),
      hostLevels,
    };
    return { plan, artifact };
  },
  trigger(artifact, phase, frontEnd) {
    const bad = needs16k('DABA', frontEnd, 'use mfcc-librosa or waveform-16k');
    if (bad) throw new Error(bad);
    const stored = artifact.tensors.get('trigger');
    if (!stored) throw new Error('daba artifact has no tensor "trigger"');
    const trigger = stored.toFloat32Array();
    const hostLevels = (artifact.data.hostLevels ?? {}) as Record<string, number>;
    const testLevel = artifactOptions(artifact, dabaOptions).testLevel;
    return makeTrigger(artifact, phase, 'waveform', (batch, clipIndices) =>
      overlay(
        batch,
        trigger,
        clipIndices.map((i) => (phase === 'train' ? (hostLevels[i] ?? testLevel) : testLevel)),
      ),
    );
  },
};

registerAttack(daba);
