// A Speech Commands folder turned into train/validation/test feature sets for one front-end.
import { homedir } from 'node:os';
import path from 'node:path';
import { getFrontEnd } from '../audio/frontends.ts';
import { disposeFeatureSet, type FeatureSet } from '../data/feature-set.ts';
import { type ExtractOptions, featureSetOf } from '../data/features.ts';
import { readSpeechCommands, type SpeechCommands, type WordSelection } from '../data/speech-commands.ts';

export interface DataSplits {
  dataset: SpeechCommands;
  classes: string[];
  frontEnd: string;
  train: FeatureSet;
  validation: FeatureSet;
  test: FeatureSet;
  /** true when every split came from the feature cache */
  cached: boolean;
}

/** Where features and generated data are cached: $KWSHIELD_CACHE, else ~/.cache/kwshield. */
export function defaultCacheDir(): string {
  return process.env.KWSHIELD_CACHE ?? path.join(homedir(), '.cache', 'kwshield');
}

export interface LoadSplitsOptions {
  frontEnd: string;
  words?: WordSelection;
  cacheDir?: string | null;
  onProgress?: (split: string, done: number, total: number) => void;
  /** per split, a trigger to apply (the attacks use this) */
  poison?: Partial<Record<'train' | 'validation' | 'test', ExtractOptions['poison']>>;
}

export async function loadSplits(dataDir: string, opts: LoadSplitsOptions): Promise<DataSplits> {
  const frontEnd = getFrontEnd(opts.frontEnd);
  const dataset = await readSpeechCommands(dataDir, { words: opts.words ?? 'scd10' });
  const cacheDir = opts.cacheDir === null ? undefined : path.join(opts.cacheDir ?? defaultCacheDir(), 'features');
  const classes = dataset.words;
  const made: FeatureSet[] = [];
  let allCached = true;
  try {
    const bySplit = async (split: 'train' | 'validation' | 'test') => {
      const clips = dataset.entries.filter((e) => e.split === split);
      if (clips.length === 0) throw new Error(`${dataDir}: the ${split} split has no clips of the words ${classes.join(', ')}`);
      const set = await featureSetOf(clips, classes, frontEnd, {
        cacheDir,
        poison: opts.poison?.[split],
        onProgress: (d, t) => opts.onProgress?.(split, d, t),
      });
      made.push(set);
      allCached &&= set.cached;
      return set;
    };
    const train = await bySplit('train');
    const validation = await bySplit('validation');
    const test = await bySplit('test');
    return { dataset, classes, frontEnd: frontEnd.name, train, validation, test, cached: allCached };
  } catch (e) {
    for (const s of made) disposeFeatureSet(s);
    throw e;
  }
}

export function disposeSplits(splits: DataSplits): void {
  for (const s of [splits.train, splits.validation, splits.test]) disposeFeatureSet(s);
}
