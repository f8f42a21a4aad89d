// The defender's clean clips (the GN-FT paper's D_c): a class-stratified `cleanRatio` of the clean training
// split, chosen by seed, never one of the attack's poisoned clips. `defend` purifies with them and `analyze`
// and `scan` read them, so all three must see the same clips: this module is the one place that picks them.
import { getFrontEnd } from '../audio/frontends.ts';
import { type FeatureSet, stratifiedSample } from './feature-set.ts';
import { featureSetOf } from './features.ts';
import { type ClipEntry, readSpeechCommands } from './speech-commands.ts';

export class DefenderClipsError extends Error {}

export interface DefenderClipsOptions {
  /** share of the training split the defender has, in (0, 1] (GN-FT paper: 0.05) */
  cleanRatio: number;
  seed: number;
  /** positions in the training split that are not clean: the attack's poisoned clips */
  exclude?: ReadonlySet<number>;
}

/** Refuses a clean ratio outside (0, 1] before any clip is read. */
export function checkCleanRatio(cleanRatio: number): void {
  if (!(cleanRatio > 0 && cleanRatio <= 1)) throw new DefenderClipsError(`--clean-ratio must be in (0, 1], got ${cleanRatio}`);
}

/** The defender's clips among `train`, the training split of the model's classes in the data set's order. */
export function defenderClips(train: readonly ClipEntry[], o: DefenderClipsOptions): ClipEntry[] {
  checkCleanRatio(o.cleanRatio);
  const chosen = stratifiedSample(
    train.map((e) => e.label),
    o.cleanRatio,
    o.seed,
    o.exclude,
  );
  return chosen.map((i) => train[i]);
}

/** The defender's clips of a data folder, as features of the model's front-end: what a defense gets. */
export async function loadCleanData(
  data: string,
  model: { classes: string[]; frontEnd: string },
  o: DefenderClipsOptions & { cacheDir?: string; onProgress?: (done: number, total: number) => void },
): Promise<FeatureSet> {
  checkCleanRatio(o.cleanRatio);
  const dataset = await readSpeechCommands(data, { words: model.classes });
  if (dataset.words.join() !== model.classes.join()) {
    throw new DefenderClipsError(`${data} has the classes ${dataset.words.join(', ')}, the model ${model.classes.join(', ')}: they must match`);
  }
  const train = dataset.entries.filter((e) => e.split === 'train');
  return featureSetOf(defenderClips(train, o), dataset.words, getFrontEnd(model.frontEnd), { cacheDir: o.cacheDir, onProgress: o.onProgress });
}
