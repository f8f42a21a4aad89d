// The embedded default dataset: a synthetic Speech Commands made with espeak-ng (specs/data.md), in the real
// dataset's layout so that everything downstream reads it exactly as it reads the real thing.
//
// Splits hold out whole voice variants (timbres). espeak-ng is deterministic, so two speaker tuples sharing a
// variant differ only in rate and pitch; splitting by tuple leaks timbre from train to test and inflates clean
// accuracy (measured in the spec: 97.3% with the leak, 94.4% without). Variants that render identically (klatt
// and klatt6, say) are merged first, or they would leak under two names.
//
// A second engine, flite (issue 37), speaks beside espeak-ng when asked (`engines`), its speakers being timbres
// too; `testEngine` holds one engine out: the test split is spoken by it alone, train and validation by the
// others, so a test voice is one the model never heard from an engine it never heard. espeak-ng alone, nothing
// held out, is the corpus as it always was, byte for byte (synth.json included), so existing caches stay valid.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { generateNoise, mixAtSnr, type NoiseKind, rms } from '../audio/noise.ts';
import { resample } from '../audio/resample.ts';
import { encodeWav, readWav } from '../audio/wav.ts';
import { folderState, replaceFolder, writeFileAtomic } from './atomic.ts';
import { espeakEngine } from './espeak.ts';
import { fliteEngine } from './flite.ts';
import { runPool } from './pool.ts';
import { createRng, deriveSeed, type Rng } from './rng.ts';
import { isSpeechEngineName, SPEECH_ENGINE_NAMES, type SpeechEngine, type SpeechEngineName, type VoiceCatalog } from './speech-engine.ts';
import { SPLIT_NAMES, type SplitName } from './splits.ts';
import { type WordSetName, wordSet } from './words.ts';

export type SynthPreset = 'tiny' | 'quick' | 'small' | 'full';

/** Clips per word in each split. */
export type SplitCounts = Record<SplitName, number>;

export const SYNTH_PRESETS: Readonly<Record<SynthPreset, SplitCounts>> = {
  // Tests: seconds for SCD-10.
  tiny: { train: 8, validation: 6, test: 6 },
  // `demo --quick`: enough for a ResNet to learn the words and take a backdoor in a few epochs (minutes on 2 cores).
  quick: { train: 60, validation: 20, test: 20 },
  // Demo: >= 100 test clips per word, so one clip is under a tenth of a point of a 1,000-clip test set (specs/data.md).
  small: { train: 300, validation: 100, test: 100 },
  // Close to the real v0.01 count per word (~2,350, split about 80/10/10).
  full: { train: 1900, validation: 230, test: 250 },
};

export interface SynthOptions {
  /** Output folder; written as `<out>.partial-<pid>` and renamed when complete. */
  out: string;
  preset?: SynthPreset;
  words?: WordSetName | readonly string[];
  seed?: number;
  /** Replace a non-empty `out`. */
  force?: boolean;
  /** espeak-ng processes at a time. */
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
  /** Overrides the preset's clips per word, split by split. */
  clipsPerWord?: Partial<SplitCounts>;
  /** Extra word folders ("unknown" words beside the keywords), with the same counts. */
  extraWords?: readonly string[];
  /** A real `_background_noise_` folder whose recordings are mixed in too (they are not copied). */
  backgroundDir?: string;
  /** Signal-to-noise ratio range in dB, speech RMS over noise RMS. */
  snrDb?: readonly [number, number];
  /** Peak level range of the word in dBFS. */
  gainDb?: readonly [number, number];
  /** Speaking rate range in words per minute (specs/data.md: 120-220). */
  rate?: readonly [number, number];
  /** espeak-ng pitch range, 0-99 (specs/data.md: 20-80). */
  pitch?: readonly [number, number];
  /** Share of the voice variants held out for validation and for test. */
  variantShare?: { validation: number; test: number };
  /** Length of each generated `_background_noise_` file. */
  noiseSeconds?: number;
  /** The espeak-ng program. */
  espeak?: string;
  /** The flite program. */
  flite?: string;
  /** Speech engines whose voices speak the corpus (default espeak-ng alone); each split mixes them in turn. */
  engines?: readonly SpeechEngineName[];
  /** One of `engines` held out: the test split is spoken by it alone, train and validation by the others. */
  testEngine?: SpeechEngineName;
}

export interface SynthSplitSummary {
  /** The engines speaking this split; only when an engine was asked for (`engines` other than espeak-ng alone, or `testEngine`). */
  engines?: SpeechEngineName[];
  /** The timbres this split holds; written `engine:timbre` when an engine was asked for. */
  variants: string[];
  speakers: number;
  clips: number;
}

export interface SynthSummary {
  out: string;
  clips: number;
  words: string[];
  /** Only when an engine was asked for, as in SynthSplitSummary. */
  engines?: { names: SpeechEngineName[]; testEngine: SpeechEngineName | null };
  splits: Record<SplitName, SynthSplitSummary>;
  /** Words longer than one second after trimming silence, cut to the middle second. */
  truncated: number;
  seconds: number;
}

const SAMPLE_RATE = 16000;
const CLIP_SAMPLES = 16000;
const GENERATED_NOISE: readonly { kind: NoiseKind; file: string }[] = [
  { kind: 'white', file: 'white_noise.wav' },
  { kind: 'pink', file: 'pink_noise.wav' },
  { kind: 'brown', file: 'brown_noise.wav' },
  { kind: 'hum50', file: 'mains_hum_50hz.wav' },
  { kind: 'hum60', file: 'mains_hum_60hz.wav' },
];

interface Speaker {
  hash: string;
  split: SplitName;
  /** Index into the engines. */
  engine: number;
  timbre: string;
  /** The engine's name for the voice: `en-gb+m3` (espeak-ng), `kal16` (flite). */
  voice: string;
  rate: number;
  pitch: number;
}

interface ClipPlan {
  speaker: Speaker;
  word: string;
  /** Relative path with '/' separators. */
  file: string;
  /** Where the word starts, as a fraction of the free space in the second. */
  placement: number;
  gainDb: number;
  snrDb: number;
  noise: number;
  /** Where the noise excerpt starts, as a fraction of the noise file's free space. */
  noiseOffset: number;
}

/** Generates the corpus; resolves when `out` holds it complete. */
export async function synthesizeSpeechCommands(opts: SynthOptions): Promise<SynthSummary> {
  const started = performance.now();
  const preset = opts.preset ?? 'tiny';
  if (!Object.hasOwn(SYNTH_PRESETS, preset)) throw new Error(`unknown synth preset '${preset}' (known: ${Object.keys(SYNTH_PRESETS).join(', ')})`);
  const counts: SplitCounts = { ...SYNTH_PRESETS[preset], ...opts.clipsPerWord };
  const wordsOption = opts.words ?? 'scd10';
  const keywords = typeof wordsOption === 'string' ? [...wordSet(wordsOption as WordSetName)] : [...wordsOption];
  const words = [...keywords, ...(opts.extraWords ?? []).filter((w) => !keywords.includes(w))];
  const seed = opts.seed ?? 0;
  const program = opts.espeak ?? 'espeak-ng';
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? Math.min(4, Math.max(2, os.availableParallelism()))));
  const snrDb = opts.snrDb ?? [5, 30];
  const gainDb = opts.gainDb ?? [-24, -3];
  const rate = opts.rate ?? [120, 220];
  const pitch = opts.pitch ?? [20, 80];
  const variantShare = opts.variantShare ?? { validation: 0.1, test: 0.2 };
  const noiseSeconds = opts.noiseSeconds ?? 10;
  validateOptions(words, counts, snrDb, gainDb, rate, pitch, variantShare, noiseSeconds);
  const engineNames = validateEngines(opts.engines ?? ['espeak-ng'], opts.testEngine);
  const testEngine = opts.testEngine ?? null;
  const engineAware = !(engineNames.length === 1 && engineNames[0] === 'espeak-ng' && testEngine === null);
  const engines: SpeechEngine[] = engineNames.map((name) => (name === 'espeak-ng' ? espeakEngine(program) : fliteEngine(opts.flite ?? 'flite')));

  const out = path.resolve(opts.out);
  const existing = await folderState(out);
  if (existing === 'file') throw new Error(`${out} exists and is not a folder`);
  if (existing === 'nonEmpty' && !opts.force) throw new Error(`${out} exists and is not empty (pass force to overwrite it)`);

  // Every engine asked for answers before any work starts: a missing one is an error naming its apt-get command.
  const versions: string[] = [];
  for (const engine of engines) versions.push(await engine.version());
  const partial = `${out}.partial-${process.pid}`;
  const tmpDir = path.join(partial, '.speech');
  await removeAbandonedPartials(out);
  await rm(partial, { recursive: true, force: true });
  await mkdir(tmpDir, { recursive: true });
  try {
    const catalogs: VoiceCatalog[] = [];
    for (const engine of engines) catalogs.push(await engine.listVoices({ tmpDir, concurrency }));
    const timbreSplits = splitTimbres(engineNames, catalogs, variantShare, seed, testEngine);

    const noiseFolder = path.join(partial, '_background_noise_');
    await mkdir(noiseFolder);
    const noises: Float32Array[] = [];
    for (const { kind, file } of GENERATED_NOISE) {
      const noise = generateNoise(kind, noiseSeconds * SAMPLE_RATE, SAMPLE_RATE, createRng(deriveSeed(seed, 'noise', kind)), { rms: 0.1 });
      await writeFileAtomic(path.join(noiseFolder, file), encodeWav(noise, SAMPLE_RATE));
      noises.push(noise);
    }
    const external = opts.backgroundDir ? await readBackgroundNoise(opts.backgroundDir) : [];
    noises.push(...external.map((e) => e.samples));

    // Every random choice is made here, up front and in a fixed order, so the files do not depend on which
    // espeak-ng process finishes first.
    const rng = createRng(deriveSeed(seed, 'clips'));
    const speakers: Speaker[] = [];
    const plans: ClipPlan[] = [];
    const taken = new Set<string>();
    for (const split of SPLIT_NAMES) {
      const speaking = engines.map((_, e) => e).filter((e) => timbreSplits[e][split].length > 0);
      const timbres = speaking.map((e) => rng.shuffle([...timbreSplits[e][split]]));
      for (let s = 0; s < counts[split]; s++) {
        // Round-robin over the split's engines, then over each engine's timbres, so every engine speaks an equal
        // share of the split and every timbre about equally often.
        const k = s % speaking.length;
        const timbre = timbres[k][Math.floor(s / speaking.length) % timbres[k].length];
        const speaker = drawSpeaker(rng, split, speaking[k], engineAware ? engineNames[speaking[k]] : '', catalogs[speaking[k]], timbre, rate, pitch, taken);
        speakers.push(speaker);
        for (const word of words) {
          plans.push({
            speaker,
            word,
            file: `${word}/${speaker.hash}_nohash_0.wav`,
            placement: rng.next(),
            gainDb: rng.uniform(gainDb[0], gainDb[1]),
            snrDb: rng.uniform(snrDb[0], snrDb[1]),
            noise: rng.int(noises.length),
            noiseOffset: rng.next(),
          });
        }
      }
    }

    for (const word of words) await mkdir(path.join(partial, word));
    let truncated = 0;
    let done = 0;
    opts.onProgress?.(0, plans.length);
    await runPool(plans.length, concurrency, async (i, worker) => {
      const plan = plans[i];
      const { speaker } = plan;
      const prosody = { rate: speaker.rate, pitch: speaker.pitch };
      const speech = await engines[speaker.engine].speak(speaker.voice, prosody, plan.word, path.join(tmpDir, `worker-${worker}.wav`));
      const rendered = renderClip(speech, plan, noises[plan.noise], engineNames[speaker.engine]);
      if (rendered.truncated) truncated++;
      await writeFileAtomic(path.join(partial, plan.file), encodeWav(rendered.samples, SAMPLE_RATE));
      done++;
      opts.onProgress?.(done, plans.length);
    });
    await rm(tmpDir, { recursive: true, force: true });

    const listOf = (split: SplitName) =>
      plans
        .filter((p) => p.speaker.split === split)
        .map((p) => p.file)
        .sort();
    await writeFileAtomic(path.join(partial, 'validation_list.txt'), lines(listOf('validation')));
    await writeFileAtomic(path.join(partial, 'testing_list.txt'), lines(listOf('test')));

    const splits = {} as Record<SplitName, SynthSplitSummary>;
    for (const split of SPLIT_NAMES) {
      const counted = {
        speakers: speakers.filter((s) => s.split === split).length,
        clips: plans.filter((p) => p.speaker.split === split).length,
      };
      splits[split] = engineAware
        ? {
            engines: engineNames.filter((_, e) => timbreSplits[e][split].length > 0),
            variants: engineNames.flatMap((name, e) => timbreSplits[e][split].map((t) => `${name}:${t}`)).sort(),
            ...counted,
          }
        : { variants: [...timbreSplits[0][split]].sort(), ...counted };
    }
    // Each engine's record under its own key; espeak-ng's keeps the name `espeak` it always had.
    const engineRecords = Object.fromEntries(
      engineNames.map((name, e) => [name === 'espeak-ng' ? 'espeak' : name, { version: versions[e], ...catalogs[e].manifest }]),
    );
    const enginesRecord = { names: engineNames, testEngine };
    // Everything that determines the files and nothing that does not (no paths, times or concurrency), so two
    // runs with the same seed and options agree byte for byte here too.
    const manifest = {
      generator: 'kwshield synthetic speech commands',
      formatVersion: 1,
      seed,
      preset,
      words: keywords,
      extraWords: words.slice(keywords.length),
      options: { clipsPerWord: counts, snrDb, gainDb, rate, pitch, variantShare, noiseSeconds, sampleRate: SAMPLE_RATE, clipSamples: CLIP_SAMPLES },
      ...(engineAware ? { engines: enginesRecord } : {}),
      ...engineRecords,
      backgroundNoise: { generated: GENERATED_NOISE.map((n) => n.file), external: external.map((e) => e.name) },
      splits,
      truncated,
      speakers: Object.fromEntries(
        [...speakers]
          .sort((a, b) => (a.hash < b.hash ? -1 : 1))
          .map((s) => [
            s.hash,
            {
              split: s.split,
              ...(engineAware ? { engine: engineNames[s.engine] } : {}),
              ...catalogs[s.engine].voiceRecord(s.voice),
              rate: s.rate,
              pitch: s.pitch,
            },
          ]),
      ),
    };
    await writeFileAtomic(path.join(partial, 'synth.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await replaceFolder(partial, out, opts.force ?? false);
    return {
      out,
      clips: plans.length,
      words,
      ...(engineAware ? { engines: enginesRecord } : {}),
      splits,
      truncated,
      seconds: (performance.now() - started) / 1000,
    };
  } catch (err) {
    await rm(partial, { recursive: true, force: true }).catch(() => {});
    throw err;
  }
}

/** The synth.json of a generated corpus, or undefined for a folder that is not one. */
export async function readSynthManifest(dir: string): Promise<SynthManifest | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(dir, 'synth.json'), 'utf8');
  } catch {
    return undefined;
  }
  return JSON.parse(text) as SynthManifest;
}

export interface SynthManifest {
  seed: number;
  preset: SynthPreset;
  words: string[];
  extraWords: string[];
  splits: Record<SplitName, SynthSplitSummary>;
  /** Which engine speaks each speaker: `engine` (and flite's `voice`, kal16 for timbre kal) only when an engine was asked for. */
  speakers: Record<string, { split: SplitName; engine?: SpeechEngineName; accent?: string; variant: string; voice?: string; rate: number; pitch: number }>;
  /** Only when an engine was asked for (`engines` other than espeak-ng alone, or `testEngine`). */
  engines?: { names: SpeechEngineName[]; testEngine: SpeechEngineName | null };
  /** Present when espeak-ng spoke. */
  espeak?: { version: string; accents: string[]; variants: string[]; mergedVariants: Record<string, string[]> };
  /** Present when flite spoke. */
  flite?: { version: string; voices: string[]; timbres: Record<string, string[]>; leftOut: string[]; prosody: string };
}

function validateOptions(
  words: string[],
  counts: SplitCounts,
  snrDb: readonly [number, number],
  gainDb: readonly [number, number],
  rate: readonly [number, number],
  pitch: readonly [number, number],
  share: { validation: number; test: number },
  noiseSeconds: number,
): void {
  if (words.length === 0) throw new Error('synth: no words');
  for (const w of words) if (!/^[a-z][a-z']*$/.test(w)) throw new Error(`synth: '${w}' is not a plain lower-case word`);
  for (const split of SPLIT_NAMES) {
    if (!Number.isInteger(counts[split]) || counts[split] < 1)
      throw new Error(`synth: clips per word for ${split} must be a positive integer, got ${counts[split]}`);
  }
  const range = (name: string, r: readonly [number, number], lo: number, hi: number) => {
    if (!(r[0] <= r[1] && r[0] >= lo && r[1] <= hi)) throw new Error(`synth: ${name} range [${r}] must be ordered and within [${lo}, ${hi}]`);
  };
  range('snrDb', snrDb, -20, 100);
  range('gainDb', gainDb, -90, 0);
  range('rate', rate, 80, 450);
  range('pitch', pitch, 0, 99);
  if (!(share.validation > 0 && share.test > 0 && share.validation + share.test < 1)) throw new Error('synth: variant shares must be positive and sum below 1');
  if (!(noiseSeconds >= 1)) throw new Error('synth: noiseSeconds must be at least 1');
}

function validateEngines(names: readonly string[], testEngine: string | undefined): SpeechEngineName[] {
  const known = SPEECH_ENGINE_NAMES.join(', ');
  if (names.length === 0) throw new Error(`synth: no speech engines (known: ${known})`);
  for (const name of names) if (!isSpeechEngineName(name)) throw new Error(`synth: unknown speech engine '${name}' (known: ${known})`);
  if (new Set(names).size !== names.length) throw new Error(`synth: engines listed twice in ${names.join(',')}`);
  if (testEngine !== undefined) {
    if (!names.includes(testEngine)) throw new Error(`synth: the test engine '${testEngine}' is not one of the engines (${names.join(', ')})`);
    if (names.length < 2) throw new Error(`synth: holding out ${testEngine} for test needs another engine for train and validation`);
  }
  return [...(names as SpeechEngineName[])];
}

/**
 * Each engine's timbres by split. Nothing held out: each engine's timbres are split by the shares on their own
 * (espeak-ng's exactly as the corpus has always split them). `testEngine`: all its timbres are test, and each other
 * engine's are split between validation (its share) and train, so no timbre and no engine is in two splits.
 */
function splitTimbres(
  names: SpeechEngineName[],
  catalogs: VoiceCatalog[],
  share: { validation: number; test: number },
  seed: number,
  testEngine: SpeechEngineName | null,
): Record<SplitName, string[]>[] {
  return names.map((name, e) => {
    const timbres = catalogs[e].timbres;
    // espeak-ng's stream is the one the corpus always used; another engine's is its own.
    const shuffleSeed = name === 'espeak-ng' ? deriveSeed(seed, 'variants') : deriveSeed(seed, 'variants', name);
    if (testEngine === null) return splitVariants(name, timbres, share, shuffleSeed);
    if (name === testEngine) return { train: [], validation: [], test: [...timbres] };
    if (timbres.length < 2) throw new Error(`synth: need at least 2 distinct ${name} timbres for train and validation, ${name} has ${timbres.length}`);
    const shuffled = createRng(shuffleSeed).shuffle([...timbres]);
    const validation = Math.min(shuffled.length - 1, Math.max(1, Math.round(shuffled.length * share.validation)));
    return { train: shuffled.slice(validation), validation: shuffled.slice(0, validation), test: [] };
  });
}

function splitVariants(engine: string, variants: string[], share: { validation: number; test: number }, shuffleSeed: number): Record<SplitName, string[]> {
  if (variants.length < 3) throw new Error(`synth: need at least 3 distinct voice variants to hold some out, ${engine} has ${variants.length}`);
  const shuffled = createRng(shuffleSeed).shuffle([...variants]);
  const test = Math.max(1, Math.round(shuffled.length * share.test));
  const validation = Math.max(1, Math.round(shuffled.length * share.validation));
  return {
    test: shuffled.slice(0, test),
    validation: shuffled.slice(test, test + validation),
    train: shuffled.slice(test + validation),
  };
}

/** `prefix` namespaces the identity by engine ('' for the espeak-ng-only corpus, whose identities predate engines). */
function drawSpeaker(
  rng: Rng,
  split: SplitName,
  engine: number,
  prefix: string,
  catalog: VoiceCatalog,
  timbre: string,
  rate: readonly [number, number],
  pitch: readonly [number, number],
  taken: Set<string>,
): Speaker {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const speaker = {
      split,
      engine,
      timbre,
      voice: catalog.pickVoice(rng, timbre),
      rate: rate[0] + rng.int(rate[1] - rate[0] + 1),
      pitch: pitch[0] + rng.int(pitch[1] - pitch[0] + 1),
    };
    const identity = `${prefix ? `${prefix}:` : ''}${speaker.voice}|${speaker.rate}|${speaker.pitch}`;
    const hash = createHash('sha1').update(identity).digest('hex').slice(0, 8);
    // A repeated tuple (or hash) would be the same speaker twice and the same file name: draw again.
    if (taken.has(identity) || taken.has(hash)) continue;
    taken.add(identity);
    taken.add(hash);
    return { hash, ...speaker };
  }
  throw new Error(`synth: cannot find a new speaker for variant ${timbre}; widen the rate or pitch range`);
}

/** Trim silence, place, set the level, add noise; `at16k` is the engine's utterance at 16 kHz. */
function renderClip(at16k: Float32Array, plan: ClipPlan, noise: Float32Array, engine: string): { samples: Float32Array; truncated: boolean } {
  let peak = 0;
  for (let i = 0; i < at16k.length; i++) peak = Math.max(peak, Math.abs(at16k[i]));
  if (peak === 0) throw new Error(`${engine} produced silence for '${plan.word}' (${plan.speaker.voice})`);
  // The engines pad with silence; the word itself is what gets placed. 10 ms margins keep soft onsets.
  const threshold = peak * 0.01;
  let first = 0;
  while (Math.abs(at16k[first]) < threshold) first++;
  let last = at16k.length - 1;
  while (Math.abs(at16k[last]) < threshold) last--;
  first = Math.max(0, first - 160);
  last = Math.min(at16k.length - 1, last + 160);
  let length = last - first + 1;
  const truncated = length > CLIP_SAMPLES;
  if (truncated) {
    first += Math.floor((length - CLIP_SAMPLES) / 2);
    length = CLIP_SAMPLES;
  }
  const offset = Math.floor(plan.placement * (CLIP_SAMPLES - length + 1));
  const scale = 10 ** (plan.gainDb / 20) / peak;
  const clip = new Float32Array(CLIP_SAMPLES);
  for (let i = 0; i < length; i++) clip[offset + i] = at16k[first + i] * scale;
  const speechRms = rms(clip, offset, offset + length);
  const noiseStart = Math.floor(plan.noiseOffset * (noise.length - CLIP_SAMPLES + 1));
  const excerpt = noise.subarray(noiseStart, noiseStart + CLIP_SAMPLES);
  return { samples: mixAtSnr(clip, excerpt, plan.snrDb, { signalRms: speechRms }), truncated };
}

/** The recordings of a real `_background_noise_` folder at 16 kHz, at least one second each (shorter ones are looped). */
async function readBackgroundNoise(dir: string): Promise<{ name: string; samples: Float32Array }[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.toLowerCase().endsWith('.wav')).sort();
  } catch (err) {
    throw new Error(`background noise folder ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (names.length === 0) throw new Error(`background noise folder ${dir} has no .wav files`);
  const out: { name: string; samples: Float32Array }[] = [];
  for (const name of names) {
    const wav = await readWav(path.join(dir, name));
    let samples = resample(wav.samples, wav.sampleRate, SAMPLE_RATE);
    if (samples.length === 0) throw new Error(`${path.join(dir, name)}: no samples`);
    if (samples.length < CLIP_SAMPLES) {
      const looped = new Float32Array(CLIP_SAMPLES);
      for (let i = 0; i < CLIP_SAMPLES; i++) looped[i] = samples[i % samples.length];
      samples = looped;
    }
    out.push({ name, samples });
  }
  return out;
}

/** Deletes `<out>.partial-<pid>` folders left by killed runs (their pid no longer exists). */
async function removeAbandonedPartials(out: string): Promise<void> {
  const prefix = `${path.basename(out)}.partial-`;
  let siblings: string[];
  try {
    siblings = await readdir(path.dirname(out));
  } catch {
    return;
  }
  for (const name of siblings) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length));
    if (!Number.isInteger(pid) || pid === process.pid || isRunning(pid)) continue;
    await rm(path.join(path.dirname(out), name), { recursive: true, force: true });
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function lines(items: string[]): string {
  return items.length ? `${items.join('\n')}\n` : '';
}
