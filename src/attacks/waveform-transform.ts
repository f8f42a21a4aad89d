// Four attacks (Ultrasonic, JingleBack, PBSM, VSVC-DSP) are the same recipe around a different signal
// change: the trigger is a fixed transform of the waveform batch, fixed by the options alone (no
// selected clips, no learned tensors), and the poison plan is GN-FT's uniform dirty-label draw. This file
// owns that recipe; each attack gives its transform and the front-ends it refuses.
import type { FrontEnd } from '../audio/frontends.ts';
import { type OptionSpecs, type OptionsOf, resolveOptions } from '../options/options.ts';
import type { Tensor } from '../torch/index.ts';
import { dirtyLabelPlan } from './poison-plan.ts';
import { artifactOptions, baseArtifact, makeTrigger } from './trigger.ts';
import type { AttackSpec, TriggerArtifact } from './types.ts';

export interface WaveformTransform<S extends OptionSpecs> {
  name: string;
  description: string;
  substitution?: string;
  options: S;
  /** default: the model's own front-end */
  frontEndFor?: AttackSpec['frontEndFor'];
  frontEndProblem: AttackSpec['frontEndProblem'];
  /** why the resolved options cannot ride on the run's front-end (checked by prepare); null when they can */
  optionsProblem?(frontEnd: FrontEnd, options: OptionsOf<S>): string | null;
  /** The transform of a [clips, samples] batch at `frontEnd`'s rate, for an artifact's options. */
  transform(options: OptionsOf<S>, frontEnd: FrontEnd): (batch: Tensor) => Tensor;
}

export function waveformTransformAttack<S extends OptionSpecs>(t: WaveformTransform<S>): AttackSpec<S> {
  return {
    name: t.name,
    description: t.description,
    domain: 'waveform',
    labelMode: 'dirty',
    ...(t.substitution ? { substitution: t.substitution } : {}),
    options: t.options,
    frontEndFor: t.frontEndFor ?? ((_kind, modelDefault) => modelDefault),
    frontEndProblem: t.frontEndProblem,
    async prepare(ctx) {
      const options = resolveOptions(t.name, t.options, ctx.options);
      const bad = t.optionsProblem?.(ctx.frontEnd, options);
      if (bad) throw new Error(bad);
      const target = ctx.classes[ctx.targetLabel];
      return {
        plan: dirtyLabelPlan({ attack: t.name, labels: ctx.train.labels, target, targetLabel: ctx.targetLabel, poisonRatio: ctx.poisonRatio, seed: ctx.seed }),
        // every resolved value is an OptionValue; a generic S hides that from the compiler
        artifact: baseArtifact(t.name, options as TriggerArtifact['options'], ctx.seed, ctx.frontEnd.name),
      };
    },
    trigger(artifact, phase, frontEnd) {
      const transform = t.transform(artifactOptions(artifact, t.options), frontEnd);
      return makeTrigger(artifact, phase, 'waveform', (batch) => transform(batch));
    },
  };
}
