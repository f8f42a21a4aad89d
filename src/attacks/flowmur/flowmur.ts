// FlowMur (Lan et al., IEEE S&P'24; specs/attacks.md section 5): a universal additive 0.5 s waveform
// trigger optimised through the differentiable MFCC against a surrogate Small CNN, then planted
// clean-label: only target-class training clips get it (30 dB under each clip, at a random offset),
// their labels stay. At test time the trigger is mixed at full strength and the sum halved.
//
// Simplifications, as the spec allows ([GNFT] does the same): the surrogate is trained on the victim's own
// clean training clips (no auxiliary classes), and the optimisation runs a few epochs on up to 2,000
// clips (the `fast` default) instead of 300-1,000 epochs on 5,000.
import { type FrontEnd, getFrontEnd } from '../../audio/frontends.ts';
import { createRng, deriveSeed } from '../../data/rng.ts';
import type { KwsModel } from '../../models/registry.ts';
import { adam } from '../../nn/index.ts';
import { type OptionsOf, resolveOptions } from '../../options/options.ts';
import {
  add,
  clampInPlace,
  crossEntropy,
  dispose,
  div,
  fullLike,
  grad,
  indexSelect,
  keep,
  mul,
  noGrad,
  norm,
  pad,
  type Tensor,
  tensor,
  tidy,
  zeros,
} from '../../torch/index.ts';
import { cleanLabelPlan } from '../poison-plan.ts';
import { registerAttack } from '../registry.ts';
import { baseArtifact, makeTrigger } from '../trigger.ts';
import type { AttackContext, AttackSpec, TriggerArtifact } from '../types.ts';

export const flowmurOptions = {
  epochs: { type: 'integer', default: 10, min: 1, help: 'trigger optimisation epochs (fast default; [GNFT] 300, [FM] 1000)' },
  clips: { type: 'integer', default: 2000, min: 1, help: 'training clips the trigger is optimised on ([FM] 5000; the spec suggests ~2000)' },
  batchSize: { type: 'integer', default: 128, min: 1, help: 'optimisation batch ([FM] 256)' },
  lr: { type: 'number', default: 1e-3, above: 0, help: 'Adam learning rate ([FM] 1e-3)' },
  epsilon: { type: 'number', default: 0.2, above: 0, max: 1, help: 'clamp of every trigger sample ([FM] 0.2)' },
  init: { type: 'number', default: 0.1, help: 'initial value of every trigger sample ([FM] 0.1)' },
  seconds: { type: 'number', default: 0.5, above: 0, max: 1, help: 'trigger length ([FM] 0.5 s)' },
  snrDb: { type: 'number', default: 30, help: 'speech-to-trigger energy ratio while optimising and poisoning ([FM] 30 dB)' },
  surrogate: { type: 'string', default: 'smallcnn', help: 'surrogate model family ([FM], [GNFT]: Small CNN)' },
  surrogateFrontEnd: { type: 'string', default: 'mfcc-flowmur', help: "the surrogate's front-end ([FM]: MFCC 13 x 32)" },
} as const;

const SAMPLE_RATE = 16000;

/** Trigger samples placed at `offset` in a clip of `samples` (zeros elsewhere), differentiable in delta. */
function placed(delta: Tensor, offset: number, samples: number): Tensor {
  return pad(delta, [offset, samples - delta.size(0) - offset]);
}

/** Per clip, delta at its own offset: [clips, samples] (a constant: no gradient). */
function placedPerClip(delta: Float32Array, offsets: readonly number[], samples: number): Tensor {
  const data = new Float32Array(offsets.length * samples);
  offsets.forEach((p, k) => data.set(delta, k * samples + p));
  return tensor(data, [offsets.length, samples]);
}

/** Offsets in [0, samples - length], one per clip, fixed by (seed, phase, clip index). */
function offsetsOf(artifact: TriggerArtifact, phase: string, clipIndices: readonly number[], room: number): number[] {
  return clipIndices.map((i) => createRng(deriveSeed(artifact.seed, 'flowmur', phase, i)).int(room + 1));
}

/** Optimises the trigger: Adam on delta, clamped to [-eps, eps] after every step ([FM] generate_trigger.py). */
async function optimiseTrigger(
  ctx: AttackContext,
  surrogate: KwsModel,
  surrogateFrontEnd: FrontEnd,
  o: OptionsOf<typeof flowmurOptions>,
): Promise<{ delta: Tensor; loss: number; hitRate: number }> {
  const length = Math.round(o.seconds * SAMPLE_RATE);
  const samples = surrogateFrontEnd.inputSamples;
  const rng = createRng(deriveSeed(ctx.seed, 'flowmur', 'optimise'));
  const pool = rng.shuffle(ctx.train.labels.map((_, i) => i)).slice(0, o.clips);
  const waves = keep(await ctx.train.loadWaves(pool));
  const delta = keep(fullLike(zeros([length]), o.init));
  delta.requiresGrad = true;
  const optimizer = adam([delta], { lr: o.lr });
  const snr = 10 ** (o.snrDb / 20);
  const batch = o.batchSize;
  const steps = o.epochs * Math.ceil(pool.length / batch);
  surrogate.eval();
  let loss = 0;
  let hits = 0;
  let seen = 0;
  try {
    let step = 0;
    for (let epoch = 0; epoch < o.epochs; epoch++) {
      const order = rng.shuffle(pool.map((_, k) => k));
      hits = 0;
      seen = 0;
      for (let start = 0; start < order.length; start += batch) {
        const rows = order.slice(start, start + batch);
        const offset = rng.int(samples - length + 1);
        const [lossValue, hit] = tidy(() => {
          const x = indexSelect(waves, 0, tensor(BigInt64Array.from(rows, BigInt)));
          // Dynamic mixing ([FM]): s = 10^(SNR/20) ||delta|| / ||x|| keeps speech 30 dB above the trigger;
          // the gradient flows through s as well.
          const s = mul(div(norm(delta), norm(x, 2, 1, true).clamp(1e-8)), snr);
          const mixed = div(add(mul(x, s), placed(delta, offset, samples)), add(s, 1)).clamp(-1, 1);
          const logits = surrogate.forward(surrogateFrontEnd.apply(mixed));
          const target = tensor(BigInt64Array.from(rows, () => BigInt(ctx.targetLabel)));
          const l = crossEntropy(logits, target);
          const [g] = grad(l, [delta]);
          delta.grad = g;
          return [l.item(), logits.argmax(1).eq(ctx.targetLabel).sum().item()];
        });
        optimizer.step();
        noGrad(() => clampInPlace(delta, -o.epsilon, o.epsilon));
        delta.grad = null;
        loss = lossValue;
        hits += hit;
        seen += rows.length;
        step++;
        ctx.onProgress?.('flowmur trigger', step, steps);
        if (step % 4 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
    }
  } finally {
    optimizer.dispose();
    waves.dispose();
  }
  delta.requiresGrad = false;
  return { delta, loss, hitRate: seen ? hits / seen : 0 };
}

function problem(frontEnd: FrontEnd): string | null {
  if (frontEnd.sampleRate === SAMPLE_RATE) return null;
  return `FlowMur's trigger is a 16 kHz waveform, but front-end '${frontEnd.name}' runs at ${frontEnd.sampleRate} Hz; use mfcc-flowmur (spectral models) or waveform-16k (eat)`;
}

export const flowmur: AttackSpec = {
  name: 'flowmur',
  description: 'FlowMur: a universal 0.5 s waveform trigger optimised against a surrogate Small CNN, clean-label',
  domain: 'waveform',
  labelMode: 'clean',
  options: flowmurOptions,
  needs: { trainSurrogate: true },
  frontEndFor: (kind) => (kind === 'waveform' ? 'waveform-16k' : 'mfcc-flowmur'),
  frontEndProblem: problem,
  async prepare(ctx) {
    const o = resolveOptions('flowmur', flowmurOptions, ctx.options);
    const bad = problem(ctx.frontEnd);
    if (bad) throw new Error(bad);
    if (!ctx.trainSurrogate) throw new Error('flowmur needs a surrogate model: run it through attackRun (kwshield attack), which trains one');
    const surrogateFrontEnd = getFrontEnd(o.surrogateFrontEnd);
    if (surrogateFrontEnd.sampleRate !== SAMPLE_RATE)
      throw new Error(`flowmur: the surrogate front-end must run at 16 kHz, '${surrogateFrontEnd.name}' runs at ${surrogateFrontEnd.sampleRate} Hz`);
    const target = ctx.classes[ctx.targetLabel];
    const plan = cleanLabelPlan({
      attack: 'flowmur',
      labels: ctx.train.labels,
      target,
      targetLabel: ctx.targetLabel,
      poisonRatio: ctx.poisonRatio,
      seed: ctx.seed,
    });
    const surrogate = await ctx.trainSurrogate(o.surrogate, surrogateFrontEnd.name);
    try {
      const { delta, loss, hitRate } = await optimiseTrigger(ctx, surrogate, surrogateFrontEnd, o);
      const artifact = baseArtifact('flowmur', o, ctx.seed, ctx.frontEnd.name);
      artifact.tensors.set('delta', delta);
      artifact.data = { finalLoss: loss, surrogateHitRateLastEpoch: hitRate, surrogate: o.surrogate, surrogateFrontEnd: surrogateFrontEnd.name };
      return { plan, artifact };
    } finally {
      surrogate.dispose();
    }
  },
  trigger(artifact, phase, frontEnd) {
    const bad = problem(frontEnd);
    if (bad) throw new Error(bad);
    const deltaTensor = artifact.tensors.get('delta');
    if (!deltaTensor) throw new Error('flowmur artifact has no tensor "delta"');
    const delta = deltaTensor.toFloat32Array();
    const deltaNorm = Math.sqrt(delta.reduce((sum, v) => sum + v * v, 0));
    const snr = 10 ** (-artifact.options.snrDb / 20);
    return makeTrigger(artifact, phase, 'waveform', (batch, clipIndices) => {
      const samples = batch.size(1);
      const triggers = placedPerClip(delta, offsetsOf(artifact, phase, clipIndices, samples - delta.length), samples);
      if (phase === 'test') return div(add(batch, triggers), 2); // [FM] Attack.py: (x + delta) / 2, full strength
      // Poisoning: k = (||x|| / ||delta||) 10^(-SNR/20), so the trigger is 30 dB under each clip.
      const k = mul(norm(batch, 2, 1, true), snr / Math.max(deltaNorm, 1e-12));
      const out = add(batch, mul(triggers, k));
      dispose([triggers, k]);
      return out;
    });
  },
};

registerAttack(flowmur);
