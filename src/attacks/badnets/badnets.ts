// Audio BadNets (specs/attacks.md section 1, [GNFT] badnets.py): a k x k block of the MFCC matrix, by
// default the last 5 frames x the highest 5 coefficients (bottom-right of the (T, F) image), overwritten
// with -200. Raw-waveform models (EAT) have no MFCC, so they get BackdoorMBTI's waveform BadNets instead
// (the first 4 samples set to -1, [MBTI] configs/attacks/audio/badnet.yaml): a documented substitution,
// recorded in the artifact's data as `variant: 'waveform'`.
import type { FrontEnd } from '../../audio/frontends.ts';
import { type OptionsOf, resolveOptions } from '../../options/options.ts';
import { tensor, where } from '../../torch/index.ts';
import { dirtyLabelPlan } from '../poison-plan.ts';
import { registerAttack } from '../registry.ts';
import { artifactOptions, baseArtifact, makeTrigger } from '../trigger.ts';
import type { AttackSpec } from '../types.ts';

const positions = ['bottom-right', 'bottom-left', 'top-right', 'top-left'] as const;

export const badnetsOptions = {
  size: { type: 'integer', default: 5, min: 1, help: 'side of the square block, in frames and coefficients ([GNFT] trigger_size 5)' },
  value: { type: 'number', default: -200, help: 'the constant written into the block ([GNFT] badnet_trigger.py: -200)' },
  position: {
    type: 'enum',
    default: 'bottom-right',
    values: positions,
    help: 'corner of the (frames x coefficients) matrix: bottom = last frames, right = highest coefficients',
  },
  waveSamples: { type: 'integer', default: 4, min: 1, help: 'waveform variant (EAT): samples overwritten at the start ([MBTI]: 4)' },
  waveValue: { type: 'number', default: -1, min: -1, max: 1, help: 'waveform variant: the value written ([MBTI]: -1)' },
} as const;

/** [rowStart, colStart] of a size x size block in a frames x coefficients matrix. */
export function blockOrigin(position: string, size: number, frames: number, coefficients: number): [number, number] {
  const bottom = position.startsWith('bottom');
  const right = position.endsWith('right');
  return [bottom ? frames - size : 0, right ? coefficients - size : 0];
}

/** A boolean mask [frames, coefficients] that is true inside the block. */
function blockMask(o: OptionsOf<typeof badnetsOptions>, frames: number, coefficients: number) {
  const size = o.size;
  const [r0, c0] = blockOrigin(o.position, size, frames, coefficients);
  const data = new Uint8Array(frames * coefficients);
  for (let r = r0; r < r0 + size; r++) for (let c = c0; c < c0 + size; c++) data[r * coefficients + c] = 1;
  return data;
}

function problem(frontEnd: FrontEnd, size: number): string | null {
  if (frontEnd.outputShape.length === 2) {
    const [frames, coefficients] = frontEnd.outputShape;
    if (size > frames || size > coefficients)
      return `a ${size}x${size} BadNets block does not fit front-end '${frontEnd.name}' (${frames}x${coefficients}); use a smaller size`;
  }
  return null;
}

export const badnets: AttackSpec = {
  name: 'badnets',
  description: 'Audio BadNets: a 5x5 block at -200 in the bottom-right of the MFCC (waveform variant for raw-waveform models)',
  domain: 'features',
  labelMode: 'dirty',
  options: badnetsOptions,
  frontEndFor: (_kind, modelDefault) => modelDefault,
  frontEndProblem: (frontEnd) => problem(frontEnd, badnetsOptions.size.default),
  async prepare(ctx) {
    const options = resolveOptions('badnets', badnetsOptions, ctx.options);
    const fit = problem(ctx.frontEnd, options.size);
    if (fit) throw new Error(fit);
    const artifact = baseArtifact('badnets', options, ctx.seed, ctx.frontEnd.name);
    artifact.data = { variant: ctx.frontEnd.outputShape.length === 1 ? 'waveform (BackdoorMBTI substitution)' : 'features' };
    const target = ctx.classes[ctx.targetLabel];
    return {
      plan: dirtyLabelPlan({ attack: 'badnets', labels: ctx.train.labels, target, targetLabel: ctx.targetLabel, poisonRatio: ctx.poisonRatio, seed: ctx.seed }),
      artifact,
    };
  },
  trigger(artifact, phase, frontEnd) {
    const o = artifactOptions(artifact, badnetsOptions);
    if (frontEnd.outputShape.length === 1) {
      // Same trigger at training and test time.
      return makeTrigger(artifact, phase, 'waveform', (batch) => {
        const samples = batch.size(1);
        const mask = new Uint8Array(samples);
        mask.fill(1, 0, Math.min(samples, o.waveSamples));
        return where(maskTensor(mask, [1, samples]), o.waveValue, batch);
      });
    }
    return makeTrigger(artifact, phase, 'features', (batch) => {
      const [, frames, coefficients] = batch.shape;
      return where(maskTensor(blockMask(o, frames, coefficients), [1, frames, coefficients]), o.value, batch);
    });
  },
};

/** A bool tensor from 0/1 bytes. */
const maskTensor = (data: Uint8Array, shape: number[]) => tensor(data, shape).gt(0);

registerAttack(badnets);
