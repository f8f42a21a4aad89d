// Reader for Google Speech Commands as unpacked on disk (Warden 2018; v0.01 and v0.02), and for the synthetic
// corpus, which shares its layout:
//   <root>/<word>/<speakerhash>_nohash_<n>.wav, <root>/_background_noise_/*.wav,
//   <root>/validation_list.txt, <root>/testing_list.txt
// The official split is the one in the lists (built by hashing the speaker, so speakers never cross splits).
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { resample } from '../audio/resample.ts';
import { probeWav, readWav } from '../audio/wav.ts';
import { hashString } from './rng.ts';
import { SPLIT_NAMES, type SplitName } from './splits.ts';
import { SCD30_WORDS, V2_EXTRA_WORDS, type WordSetName, wordSet } from './words.ts';

/** A named set, every word folder present ('all', sorted), or an explicit list (labels follow its order). */
export type WordSelection = WordSetName | 'all' | readonly string[];

/**
 * 'official': the dataset's validation/testing lists. 'random': 80/10/10 by a seeded hash of each file's path,
 * as some backdoor repositories do; it puts one speaker's clips in several splits, so only on request.
 */
export type SplitMethod = 'official' | 'random';

export interface SpeechCommandsOptions {
  words?: WordSelection;
  split?: SplitMethod;
  /** Seed of the 'random' split. */
  seed?: number;
}

export interface ClipEntry {
  /** Absolute path. */
  path: string;
  /** Path relative to the root with '/' separators, as in the lists. */
  file: string;
  word: string;
  /** Index of `word` in the dataset's word list. */
  label: number;
  /** The part of the file name before '_nohash_'. */
  speaker: string;
  split: SplitName;
}

export type DatasetVersion = 'v0.01' | 'v0.02' | 'synthetic' | 'unknown';

export interface SpeechCommands {
  root: string;
  version: DatasetVersion;
  /** Class names; a label indexes this list. */
  words: string[];
  entries: ClipEntry[];
  /** Absolute paths of the `_background_noise_` recordings, sorted (empty when the folder is absent). */
  backgroundNoise: string[];
  splitMethod: SplitMethod;
}

const SAMPLE_RATE = 16000;
const LIST_FILES: Record<Exclude<SplitName, 'train'>, string> = { validation: 'validation_list.txt', test: 'testing_list.txt' };

export async function readSpeechCommands(root: string, opts: SpeechCommandsOptions = {}): Promise<SpeechCommands> {
  const splitMethod = opts.split ?? 'official';
  if (splitMethod !== 'official' && splitMethod !== 'random') throw new Error(`unknown split method '${splitMethod as string}' (official or random)`);
  const scan = await scanRoot(root);
  const words = selectWords(scan, opts.words ?? 'scd10');
  const missing = words.filter((w) => !scan.wordFiles.has(w));
  if (missing.length) {
    throw new Error(
      `Speech Commands folder ${scan.root} is missing word folders: ${missing.join(', ')} (found: ${[...scan.wordFiles.keys()].sort().join(', ') || 'none'})`,
    );
  }

  let assign: (file: string) => SplitName;
  if (splitMethod === 'official') {
    const lists = await readSplitLists(scan, words, true);
    assign = (file) => lists.get(file) ?? 'train';
  } else {
    const seed = opts.seed ?? 0;
    assign = (file) => randomSplit(file, seed);
  }

  const entries: ClipEntry[] = [];
  words.forEach((word, label) => {
    for (const name of scan.wordFiles.get(word) ?? []) {
      const file = `${word}/${name}`;
      entries.push({ path: path.join(scan.root, word, name), file, word, label, speaker: speakerOf(name), split: assign(file) });
    }
  });
  return {
    root: scan.root,
    version: scan.version,
    words,
    entries,
    backgroundNoise: scan.backgroundNoise.map((n) => path.join(scan.root, '_background_noise_', n)),
    splitMethod,
  };
}

export interface LoadClipOptions {
  /** Samples per clip. */
  length?: number;
  /** Short clips: zero-padded at the end (default), or dropped (loadClip returns undefined). */
  short?: 'pad' | 'drop';
  /** Expected sample rate. */
  sampleRate?: number;
  /** Resample clips at another rate instead of rejecting them. */
  resample?: boolean;
}

/** One clip as exactly `length` samples: short ones padded (or dropped), long ones cut at the end. */
export async function loadClip(clip: string | ClipEntry, opts: LoadClipOptions = {}): Promise<Float32Array | undefined> {
  const file = typeof clip === 'string' ? clip : clip.path;
  const length = opts.length ?? SAMPLE_RATE;
  const sampleRate = opts.sampleRate ?? SAMPLE_RATE;
  const wav = await readWav(file);
  let samples = wav.samples;
  if (wav.sampleRate !== sampleRate) {
    if (!opts.resample) throw new Error(`${file}: sample rate ${wav.sampleRate} Hz, expected ${sampleRate} Hz`);
    samples = resample(samples, wav.sampleRate, sampleRate);
  }
  if (samples.length === length) return samples;
  if (samples.length > length) return samples.slice(0, length);
  if ((opts.short ?? 'pad') === 'drop') return undefined;
  const padded = new Float32Array(length);
  padded.set(samples);
  return padded;
}

export interface DatasetInfoOptions {
  words?: WordSelection;
  split?: SplitMethod;
  seed?: number;
  /** Files probed at a time. */
  concurrency?: number;
}

export interface DatasetInfo {
  root: string;
  version: DatasetVersion;
  words: string[];
  splitMethod: SplitMethod;
  splits: Record<SplitName, { clips: number; speakers: number; perWord: Record<string, number> }>;
  clips: number;
  /** Clips per sample rate (Hz), of the clips that could be read. */
  sampleRates: Record<string, number>;
  /** Seconds, over the clips that could be read. */
  duration: { min: number; max: number; mean: number; shorterThanOneSecond: number; longerThanOneSecond: number };
  backgroundNoise: { file: string; seconds: number }[];
  /** Speakers whose clips are in more than one split. */
  speakersInSeveralSplits: number;
  /** Everything that looked wrong, one line each (capped; `problemCount` has the total). */
  problems: string[];
  problemCount: number;
}

const PROBLEM_LIMIT = 100;

/** Counts and checks a dataset folder without loading the audio (headers only). Used by `kwshield data info`. */
export async function datasetInfo(root: string, opts: DatasetInfoOptions = {}): Promise<DatasetInfo> {
  const scan = await scanRoot(root);
  const problems: string[] = [];
  let problemCount = 0;
  const problem = (text: string) => {
    problemCount++;
    if (problems.length < PROBLEM_LIMIT) problems.push(text);
  };
  for (const ignored of scan.ignored) problem(`not a .wav file, ignored: ${ignored}`);

  const selection = opts.words ?? 'all';
  const words = selectWords(scan, selection).filter((w) => {
    if (scan.wordFiles.has(w)) return true;
    problem(`missing word folder: ${w}`);
    return false;
  });
  const splitMethod = opts.split ?? 'official';
  let assign: (file: string) => SplitName;
  if (splitMethod === 'official') {
    const lists = await readSplitLists(scan, words, false, problem);
    assign = (file) => lists.get(file) ?? 'train';
  } else {
    assign = (file) => randomSplit(file, opts.seed ?? 0);
  }

  const splits = Object.fromEntries(
    SPLIT_NAMES.map((s) => [s, { clips: 0, speakers: 0, perWord: Object.fromEntries(words.map((w) => [w, 0])) }]),
  ) as DatasetInfo['splits'];
  const speakerSplits = new Map<string, Set<SplitName>>();
  const files: string[] = [];
  for (const word of words) {
    for (const name of scan.wordFiles.get(word) ?? []) {
      const file = `${word}/${name}`;
      const split = assign(file);
      splits[split].clips++;
      splits[split].perWord[word]++;
      const speaker = speakerOf(name);
      const seen = speakerSplits.get(speaker) ?? new Set<SplitName>();
      seen.add(split);
      speakerSplits.set(speaker, seen);
      files.push(file);
    }
  }
  for (const split of SPLIT_NAMES) {
    splits[split].speakers = [...speakerSplits.values()].filter((s) => s.has(split)).length;
  }
  const speakersInSeveralSplits = [...speakerSplits.values()].filter((s) => s.size > 1).length;
  if (speakersInSeveralSplits > 0 && splitMethod === 'official') problem(`${speakersInSeveralSplits} speakers have clips in more than one split`);

  const sampleRates: Record<string, number> = {};
  let min = Number.POSITIVE_INFINITY;
  let max = 0;
  let total = 0;
  let readable = 0;
  let shorter = 0;
  let longer = 0;
  await forEachLimited(files, opts.concurrency ?? 16, async (file) => {
    try {
      const info = await probeWav(path.join(scan.root, file));
      sampleRates[info.sampleRate] = (sampleRates[info.sampleRate] ?? 0) + 1;
      min = Math.min(min, info.duration);
      max = Math.max(max, info.duration);
      total += info.duration;
      readable++;
      if (info.frames < info.sampleRate) shorter++;
      if (info.frames > info.sampleRate) longer++;
      if (info.sampleRate !== SAMPLE_RATE) problem(`${file}: sample rate ${info.sampleRate} Hz, expected ${SAMPLE_RATE}`);
    } catch (err) {
      problem((err as Error).message);
    }
  });

  const backgroundNoise: DatasetInfo['backgroundNoise'] = [];
  for (const name of scan.backgroundNoise) {
    try {
      backgroundNoise.push({ file: name, seconds: (await probeWav(path.join(scan.root, '_background_noise_', name))).duration });
    } catch (err) {
      problem((err as Error).message);
    }
  }

  return {
    root: scan.root,
    version: scan.version,
    words,
    splitMethod,
    splits,
    clips: files.length,
    sampleRates,
    duration: { min: readable ? min : 0, max, mean: readable ? total / readable : 0, shorterThanOneSecond: shorter, longerThanOneSecond: longer },
    backgroundNoise,
    speakersInSeveralSplits,
    problems,
    problemCount,
  };
}

interface RootScan {
  root: string;
  version: DatasetVersion;
  /** Word folder -> its .wav file names, sorted. */
  wordFiles: Map<string, string[]>;
  backgroundNoise: string[];
  /** Relative paths of non-.wav files inside word folders. */
  ignored: string[];
}

async function scanRoot(rootArg: string): Promise<RootScan> {
  const root = path.resolve(rootArg);
  let names: string[];
  try {
    const info = await stat(root);
    if (!info.isDirectory()) throw new Error(`Speech Commands path ${root} is not a folder`);
    names = (await readdir(root)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`Speech Commands folder not found: ${root}`);
    throw err;
  }
  const wordFiles = new Map<string, string[]>();
  const ignored: string[] = [];
  let backgroundNoise: string[] = [];
  let synthetic = false;
  for (const name of names) {
    if (name === 'synth.json') synthetic = true;
    if (name.startsWith('.')) continue;
    const full = path.join(root, name);
    if (!(await stat(full)).isDirectory()) continue;
    const files = (await readdir(full)).sort();
    if (name === '_background_noise_') {
      backgroundNoise = files.filter((f) => f.toLowerCase().endsWith('.wav'));
      continue;
    }
    if (name.startsWith('_')) continue;
    wordFiles.set(
      name,
      files.filter((f) => {
        if (f.endsWith('.wav')) return true;
        if (!f.startsWith('.')) ignored.push(`${name}/${f}`);
        return false;
      }),
    );
  }
  let version: DatasetVersion = 'unknown';
  if (synthetic) version = 'synthetic';
  else if (V2_EXTRA_WORDS.some((w) => wordFiles.has(w))) version = 'v0.02';
  else if (SCD30_WORDS.every((w) => wordFiles.has(w))) version = 'v0.01';
  return { root, version, wordFiles, backgroundNoise, ignored };
}

function selectWords(scan: RootScan, selection: WordSelection): string[] {
  if (selection === 'all') return [...scan.wordFiles.keys()].sort();
  if (typeof selection === 'string') return [...wordSet(selection as WordSetName)];
  if (new Set(selection).size !== selection.length) throw new Error(`word list has duplicates: ${selection.join(', ')}`);
  return [...selection];
}

/**
 * file -> 'validation' | 'test' from the two lists, for the selected words. Lines naming other words are ignored
 * (a copy holding only the SCD-10 folders keeps the full lists). Strict mode throws on a listed file that does not
 * exist or is in both lists; otherwise each becomes a problem.
 */
async function readSplitLists(scan: RootScan, words: string[], strict: boolean, problem?: (text: string) => void): Promise<Map<string, SplitName>> {
  const selected = new Set(words);
  const existing = new Set(words.flatMap((w) => (scan.wordFiles.get(w) ?? []).map((name) => `${w}/${name}`)));
  const out = new Map<string, SplitName>();
  const report = (text: string) => {
    if (strict) throw new Error(text);
    problem?.(text);
  };
  for (const split of ['validation', 'test'] as const) {
    const listPath = path.join(scan.root, LIST_FILES[split]);
    let text: string;
    try {
      text = await readFile(listPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      report(`${listPath} not found: the official split needs it (use split: 'random' for a folder without the lists)`);
      continue;
    }
    const missing: string[] = [];
    text.split('\n').forEach((raw, index) => {
      const file = raw.trim().replace(/\\/g, '/');
      if (!file) return;
      const slash = file.indexOf('/');
      const word = slash > 0 ? file.slice(0, slash) : '';
      if (!selected.has(word)) return;
      if (!existing.has(file)) {
        missing.push(`line ${index + 1}: ${file}`);
        return;
      }
      const other = out.get(file);
      if (other && other !== split) report(`${file} is in both ${LIST_FILES.validation} and ${LIST_FILES.test}`);
      out.set(file, split);
    });
    if (missing.length) {
      const shown = missing.slice(0, 5).join('; ');
      report(`${listPath} lists ${missing.length} file(s) that do not exist: ${shown}${missing.length > 5 ? '; ...' : ''}`);
    }
  }
  return out;
}

function randomSplit(file: string, seed: number): SplitName {
  const u = hashString(`${seed}\u0000${file}`) / 4294967296;
  return u < 0.8 ? 'train' : u < 0.9 ? 'validation' : 'test';
}

function speakerOf(name: string): string {
  const at = name.indexOf('_nohash_');
  return at > 0 ? name.slice(0, at) : name.replace(/\.wav$/, '');
}

async function forEachLimited<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
