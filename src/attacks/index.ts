// The attacks (specs/attacks.md): importing this module registers all of them. Library use:
//
//   import { attacks } from 'kwshield';
//   attacks.listAttacks();                                   // names, domains, substitutions
//   const badnets = attacks.getAttack('badnets');
//   const { plan, artifact } = await badnets.prepare(ctx);   // which clips to poison, what fixes the trigger
//   const trigger = badnets.trigger(artifact, 'test', getFrontEnd('mfcc-16k'));
//   const triggered = trigger.apply(features, rng, clipIndices);
import './badnets/badnets.ts';
import './ultrasonic/ultrasonic.ts';
import './jingleback/jingleback.ts';
import './daba/daba.ts';
import './flowmur/flowmur.ts';
import './pbsm/pbsm.ts';
import './vsvc-dsp/vsvc-dsp.ts';

export { OptionError, type OptionSpec, type OptionSpecs, type OptionValue, parseOptionPairs, resolveOptions } from '../options/options.ts';
export { ArtifactError, artifactFiles, disposeArtifact, loadArtifact, loadPlan, saveArtifact, savePlan } from './artifact.ts';
export { badnets, blockOrigin } from './badnets/badnets.ts';
export { daba, dbfs, readPool, trainingLevels } from './daba/daba.ts';
export { flowmur } from './flowmur/flowmur.ts';
export { jingleback } from './jingleback/jingleback.ts';
export { addBurst, burstFrames, pbsm } from './pbsm/pbsm.ts';
export { chosenHostsPlan, cleanLabelPlan, dirtyLabelPlan, hostCount, PoisonPlanError, poisonedLabels } from './poison-plan.ts';
export { attackNames, getAttack, listAttacks, registerAttack, UnknownAttackError } from './registry.ts';
export type { AttackContext, AttackPhase, AttackSpec, PoisonPlan, TrainClips, TriggerArtifact } from './types.ts';
export { ultrasonic, ultrasonicTone } from './ultrasonic/ultrasonic.ts';
export { vsvcDsp } from './vsvc-dsp/vsvc-dsp.ts';
