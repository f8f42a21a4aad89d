// The clips an analysis of a run folder reads: the defender's clean clips (data/defender-clips.ts picks
// them, as it does for defend), their triggered copies, their waveforms, and the attack run's trigger.
import { disposeArtifact, getAttack, loadArtifact, loadPlan } from '../attacks/index.ts';
import type { PoisonPlan, TriggerArtifact } from '../attacks/types.ts';
import { type FrontEnd, getFrontEnd } from '../audio/frontends.ts';
import { checkCleanRatio, defenderClips as chooseDefenderClips, type DefenderClipsOptions } from '../data/defender-clips.ts';
import { featureSetOf, type Trigger, triggeredFeatureSet } from '../data/features.ts';
import { type ClipEntry, readSpeechCommands } from '../data/speech-commands.ts';
import type { ModelManifest } from '../models/checkpoint.ts';

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

/** The defender's clean clips of the data folder, refusing data that lacks the model's classes or training clips. */
export async function defenderClips(
  data: string,
  manifest: ModelManifest,
  o: { run: string } & DefenderClipsOptions,
): Promise<{ clips: ClipEntry[]; classes: string[] }> {
  checkCleanRatio(o.cleanRatio);
  const { clips, classes } = await clipsForModel(data, manifest, o.run);
  const train = clips.filter((e) => e.split === 'train');
  if (train.length === 0) throw new AnalysisInputError(`${data} has no training clips of ${classes.join(', ')}`);
  return { clips: chooseDefenderClips(train, o), classes };
}

export const cleanFeatures = (clips: ClipEntry[], classes: string[], frontEnd: FrontEnd, cacheDir?: string) =>
  featureSetOf(clips, classes, frontEnd, { cacheDir });

/** Every clip with the trigger, labels kept: data's triggeredFeatureSet under the name the library has offered here. */
export const triggeredFeatures = (clips: ClipEntry[], classes: string[], frontEnd: FrontEnd, trigger: Trigger, seed: number, cacheDir?: string) =>
  triggeredFeatureSet(clips, classes, frontEnd, trigger, seed, { cacheDir });

/** The waveform reader, re-exported for the scans that import it from here. */
export { waveformsOf } from '../data/features.ts';

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
