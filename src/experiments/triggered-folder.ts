// ASR and RA on the user's own triggered clips (kwshield eval --triggered DIR --target WORD): a user who found
// or suspects a trigger brings clips, not one of kwshield's attacks. DIR is in the Speech Commands layout,
// each clip in the folder of its true word (any subset of the model's classes; the split lists, if any, are
// ignored: every clip is used). Its features are never cached: the folder is the user's and may change.

import { attackSuccessRate, robustAccuracy } from '../analysis/metrics.ts';
import type { FrontEnd } from '../audio/frontends.ts';
import { disposeFeatureSet, type FeatureSet } from '../data/feature-set.ts';
import { featureSetOf } from '../data/features.ts';
import { type ClipEntry, readSpeechCommands } from '../data/speech-commands.ts';
import type { KwsModel } from '../models/registry.ts';
import { predict } from './evaluate.ts';

export class TriggeredFolderError extends Error {}

export interface TriggeredResult {
  triggered: string;
  target: string;
  /** clips read, and those whose true word is not the target (what ASR and RA count) */
  clips: number;
  nonTargetClips: number;
  /** share of non-target clips predicted as the target */
  asr: number;
  /** share of non-target clips still predicted as their true word */
  ra: number;
  perWord: Record<string, { clips: number; asr: number }>;
}

/** The target's class index, or a refusal naming the choices. */
export function targetLabel(target: string, classes: readonly string[]): number {
  const i = classes.indexOf(target);
  if (i < 0) throw new TriggeredFolderError(`--target '${target}' is not one of the model's classes (${classes.join(', ')})`);
  return i;
}

/** Every clip of DIR, labelled by its folder as the model's class of that name (the folder is checked, nothing is read). */
export async function readTriggeredFolder(dir: string, classes: string[]): Promise<ClipEntry[]> {
  let found: Awaited<ReturnType<typeof readSpeechCommands>>;
  try {
    found = await readSpeechCommands(dir, { words: 'all', split: 'random' });
  } catch (e) {
    throw new TriggeredFolderError(`--triggered ${dir}: ${(e as Error).message}`);
  }
  const unknown = found.words.filter((w) => !classes.includes(w));
  if (unknown.length) {
    throw new TriggeredFolderError(
      `--triggered ${dir} has word folders the model does not classify (${unknown.join(', ')}); put each triggered clip in the folder of its true word, one of ${classes.join(', ')}`,
    );
  }
  if (found.entries.length === 0)
    throw new TriggeredFolderError(`--triggered ${dir} holds no .wav clip in a word folder (Speech Commands layout: DIR/<word>/<clip>.wav)`);
  return found.entries.map((e) => ({ ...e, label: classes.indexOf(e.word) }));
}

/** ASR and RA of `model` on the triggered clips of DIR (from readTriggeredFolder). */
export async function evaluateTriggeredFolder(
  model: KwsModel,
  triggered: { dir: string; clips: ClipEntry[] },
  target: string,
  classes: string[],
  frontEnd: FrontEnd,
): Promise<TriggeredResult> {
  const t = targetLabel(target, classes);
  const dir = triggered.dir;
  const set: FeatureSet = await featureSetOf(triggered.clips, classes, frontEnd);
  try {
    const { predictions } = predict(model, set);
    const labels = set.labelList;
    const nonTarget = labels.filter((l) => l !== t).length;
    if (nonTarget === 0) throw new TriggeredFolderError(`--triggered ${dir} holds only clips of the target '${target}'; ASR counts clips of the other words`);
    const perWord: TriggeredResult['perWord'] = {};
    classes.forEach((word, c) => {
      const idx = labels.flatMap((l, i) => (l === c ? [i] : []));
      if (idx.length && c !== t) perWord[word] = { clips: idx.length, asr: idx.filter((i) => predictions[i] === t).length / idx.length };
    });
    return {
      triggered: dir,
      target,
      clips: set.size,
      nonTargetClips: nonTarget,
      asr: attackSuccessRate(predictions, labels, t),
      ra: robustAccuracy(predictions, labels, t),
      perWord,
    };
  } finally {
    disposeFeatureSet(set);
  }
}
