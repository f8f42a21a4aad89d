// The clips an analysis of a run folder reads: the defender's clean clips (the GN-FT paper's D_c), chosen
// exactly as experiments/defend-run.ts loadCleanData chooses them (a class-stratified `cleanRatio` of the
// clean training split by seed, without the attack's poisoned clips when the attack run is known; a test
// checks the two agree clip for clip), their triggered copies, their waveforms, and the attack run's trigger.
// This layer sits above experiments/, so it repeats that choice from the data layer instead of importing it.
import { disposeArtifact, getAttack, loadArtifact, loadPlan } from '../attacks/index.ts';
import type { PoisonPlan, TriggerArtifact } from '../attacks/types.ts';
import { type FrontEnd, getFrontEnd } from '../audio/frontends.ts';
import { type FeatureSet, stratifiedSample } from '../data/feature-set.ts';
import { featureSetOf, type Trigger } from '../data/features.ts';
import { type ClipEntry, loadClip, readSpeechCommands } from '../data/speech-commands.ts';
import type { ModelManifest } from '../models/checkpoint.ts';
import { type Tensor, tensor } from '../torch/index.ts';

export class AnalysisInputError extends Error {}

/** The data folder's clips of the model's classes; refuses data that lacks any of them. */
export async function clipsForModel(data: string, manifest: ModelManifest, run: string): Promise<{ clips: ClipEntry[]; classes: string[] }> {
  const available = await readSpeechCommands(data, { words: 'all' });
  const missing = manifest.classes.filter((c) => !available.words.includes(c));
  if (missing.length) {
    throw new AnalysisInputError(
      `the model's classes do not match the data: ${run} classifies ${manifest.classes.join(', ')}, but ${data} has no ${missing.join(', ')} (it has ${available.words.join(', ') || 'no word folders'}); give the data the model was trained on`,
    );
  }
  const dataset = await readSpeechCommands(data, { words: manifest.classes });
  return { clips: dataset.entries, classes: dataset.words };
}

/** The defender's clean clips: a stratified share of the training split, never an excluded (poisoned) one. */
export async function defenderClips(
  data: string,
  manifest: ModelManifest,
  o: { run: string; cleanRatio: number; seed: number; exclude?: ReadonlySet<number> },
): Promise<{ clips: ClipEntry[]; classes: string[] }> {
  if (!(o.cleanRatio > 0 && o.cleanRatio <= 1)) throw new AnalysisInputError(`--clean-ratio must be in (0, 1], got ${o.cleanRatio}`);
  const { clips, classes } = await clipsForModel(data, manifest, o.run);
  const train = clips.filter((e) => e.split === 'train');
  if (train.length === 0) throw new AnalysisInputError(`${data} has no training clips of ${classes.join(', ')}`);
  const chosen = stratifiedSample(
    train.map((e) => e.label),
    o.cleanRatio,
    o.seed,
    o.exclude,
  );
  return { clips: chosen.map((i) => train[i]), classes };
}

export const cleanFeatures = (clips: ClipEntry[], classes: string[], frontEnd: FrontEnd, cacheDir?: string) =>
  featureSetOf(clips, classes, frontEnd, { cacheDir });

/** Every clip with the trigger, labels kept (the loss of a BLC uses the target instead). */
export const triggeredFeatures = (
  clips: ClipEntry[],
  classes: string[],
  frontEnd: FrontEnd,
  trigger: Trigger,
  seed: number,
  cacheDir?: string,
): Promise<FeatureSet> => featureSetOf(clips, classes, frontEnd, { cacheDir, poison: { trigger, indices: clips.map((_, i) => i), seed } });

/** Waveforms [clips, inputSamples] at the front-end's rate (short clips padded, long ones cut). */
export async function waveformsOf(files: readonly (ClipEntry | string)[], frontEnd: FrontEnd): Promise<Tensor> {
  const data = new Float32Array(files.length * frontEnd.inputSamples);
  for (let i = 0; i < files.length; i++) {
    const samples = await loadClip(files[i], { length: frontEnd.inputSamples, sampleRate: frontEnd.sampleRate, resample: true });
    data.set(samples as Float32Array, i * frontEnd.inputSamples);
  }
  return tensor(data, [files.length, frontEnd.inputSamples]);
}

export interface AttackOf {
  run: string;
  attack: string;
  domain: 'waveform' | 'features';
  plan: PoisonPlan;
  artifact: TriggerArtifact;
  /** the test-time trigger for the model's front-end */
  trigger: Trigger;
  dispose(): void;
}

/** An attack run's trigger and poison plan, checked against the model's front-end and classes. */
export function attackOf(run: string, manifest: ModelManifest): AttackOf {
  const artifact = loadArtifact(run);
  try {
    const plan = loadPlan(run);
    const attack = getAttack(artifact.attack);
    const frontEnd = getFrontEnd(manifest.frontEnd);
    const problem = attack.frontEndProblem(frontEnd);
    if (problem) throw new AnalysisInputError(`--attack-of ${run}: ${problem}`);
    if (manifest.classes[plan.targetLabel] !== plan.target) {
      throw new AnalysisInputError(
        `--attack-of ${run} targets '${plan.target}', which is not class ${plan.targetLabel} of this model (${manifest.classes.join(', ')})`,
      );
    }
    return {
      run,
      attack: attack.name,
      domain: attack.domain,
      plan,
      artifact,
      trigger: attack.trigger(artifact, 'test', frontEnd),
      dispose: () => disposeArtifact(artifact),
    };
  } catch (e) {
    disposeArtifact(artifact);
    throw e;
  }
}
