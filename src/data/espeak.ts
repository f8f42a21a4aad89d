// The espeak-ng program as the synthetic corpus uses it: one process per utterance (specs/data.md), its
// English accents and its voice variants. Nothing here is cached: every caller lists voices afresh.
import { createHash } from 'node:crypto';
import { readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { resample } from '../audio/resample.ts';
import { decodeWav, type Wav } from '../audio/wav.ts';
import { runPool } from './pool.ts';
import { type RunResult, runProgram, type SpeechEngine, type VoiceCatalog } from './speech-engine.ts';

export const ESPEAK_INSTALL_HINT = 'install it with `apt-get install -y espeak-ng` (macOS: `brew install espeak-ng`)';

export interface EspeakVoices {
  /** English accents as espeak-ng language codes (en-gb, en-us, en-gb-scotland, ...), sorted. */
  accents: string[];
  /** Voice variants (m1, f3, klatt, Andy, ...) as names usable after '+', sorted. */
  variants: string[];
}

export interface Utterance {
  accent: string;
  variant: string;
  /** Words per minute. */
  rate: number;
  /** 0..99. */
  pitch: number;
  text: string;
}

/** Runs espeak-ng and collects its output; a missing program becomes an error that says how to install it. */
export function runEspeak(program: string, args: string[], timeoutMs = 30000): Promise<RunResult> {
  return runProgram(program, args, { missing: `espeak-ng is needed for the synthetic dataset; ${ESPEAK_INSTALL_HINT}`, timeoutMs });
}

/** 'eSpeak NG text-to-speech: 1.51' (without the data path, which differs between machines). */
export async function espeakVersion(program = 'espeak-ng'): Promise<string> {
  const { stdout } = await runEspeak(program, ['--version']);
  return stdout
    .split('\n')[0]
    .replace(/\s+Data at:.*$/, '')
    .trim();
}

/**
 * English accents from `espeak-ng --voices=en` and variants from `--voices=variant`. MBROLA voices (file mb/...)
 * are left out: they need separately installed voice data, and a corpus must not depend on what happens to be.
 */
export async function listEspeakVoices(program = 'espeak-ng'): Promise<EspeakVoices> {
  const english = parseVoiceList((await runEspeak(program, ['--voices=en'])).stdout);
  const variantList = parseVoiceList((await runEspeak(program, ['--voices=variant'])).stdout);
  const accents = new Set<string>();
  for (const v of english) if (v.language !== 'variant' && !v.file.startsWith('mb/') && /^en(-|$)/.test(v.language)) accents.add(v.language);
  const variants = new Set<string>();
  for (const v of variantList) if (v.file.startsWith('!v/')) variants.add(v.file.slice(3));
  if (accents.size === 0) throw new Error(`${program} lists no English voices; is espeak-ng-data installed?`);
  if (variants.size === 0) throw new Error(`${program} lists no voice variants; is espeak-ng-data installed?`);
  return { accents: [...accents].sort(), variants: [...variants].sort() };
}

export interface VoiceListEntry {
  language: string;
  name: string;
  file: string;
}

/**
 * Parses espeak-ng's voice table. Columns drift when a name is long, so fields are found by shape: priority,
 * language, age/gender, a name without spaces, then the file (which may contain a space: "!v/Mr serious"),
 * then optional "(lang priority)" groups.
 */
export function parseVoiceList(text: string): VoiceListEntry[] {
  const entries: VoiceListEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(.*?)\s*((?:\([^)]*\)\s*)*)$/.exec(line);
    if (!m?.[5]) continue;
    entries.push({ language: m[2], name: m[4], file: m[5] });
  }
  return entries;
}

/** Speaks one utterance into `tmpFile` (espeak-ng writes 22,050 Hz 16-bit mono), reads it and deletes it. */
export async function speak(program: string, utterance: Utterance, tmpFile: string): Promise<Wav> {
  const voice = `${utterance.accent}+${utterance.variant}`;
  await runEspeak(program, ['-v', voice, '-s', String(utterance.rate), '-p', String(utterance.pitch), '-w', tmpFile, utterance.text]);
  try {
    const bytes = await readFile(tmpFile);
    return decodeWav(bytes, `espeak-ng output for '${utterance.text}' (${voice}, rate ${utterance.rate}, pitch ${utterance.pitch})`);
  } finally {
    await unlink(tmpFile).catch(() => {});
  }
}

/**
 * espeak-ng as a speech engine of the synthetic corpus. A timbre is a voice variant (m1, f3, klatt, Andy, ...);
 * its voices are the variant in each English accent (`en-gb+m3`), which changes pronunciation, not timbre.
 * Variants that render identically (klatt and klatt6, say) are merged first, or they would leak under two names.
 */
export function espeakEngine(program = 'espeak-ng'): SpeechEngine {
  return {
    name: 'espeak-ng',
    version: () => espeakVersion(program),
    listVoices: async ({ tmpDir, concurrency }): Promise<VoiceCatalog> => {
      const voices = await listEspeakVoices(program);
      const { canonical, duplicates } = await mergeIdenticalVariants(program, voices.variants, voices.accents, tmpDir, concurrency);
      return {
        timbres: canonical,
        // rng.pick over the accents in their sorted order: the draw the corpus has always made for a speaker's accent.
        pickVoice: (rng, variant) => `${rng.pick(voices.accents)}+${variant}`,
        voiceRecord: (voice) => {
          const plus = voice.indexOf('+');
          return { accent: voice.slice(0, plus), variant: voice.slice(plus + 1) };
        },
        manifest: { accents: voices.accents, variants: canonical, mergedVariants: duplicates },
      };
    },
    speak: async (voice, prosody, text, tmpFile) => {
      const plus = voice.indexOf('+');
      const wav = await speak(program, { accent: voice.slice(0, plus), variant: voice.slice(plus + 1), ...prosody, text }, tmpFile);
      return resample(wav.samples, wav.sampleRate, 16000);
    },
  };
}

/**
 * Renders each variant once and keeps one name per distinct sound; returns the kept names (in the order given)
 * and, for each, the names merged into it.
 */
export async function mergeIdenticalVariants(
  program: string,
  variants: string[],
  accents: string[],
  tmpDir: string,
  concurrency: number,
): Promise<{ canonical: string[]; duplicates: Record<string, string[]> }> {
  const accent = accents.includes('en-us') ? 'en-us' : accents[0];
  const fingerprints = new Array<string>(variants.length);
  await runPool(variants.length, concurrency, async (i, worker) => {
    const wav = await speak(program, { accent, variant: variants[i], rate: 175, pitch: 50, text: 'yes' }, path.join(tmpDir, `probe-${worker}.wav`));
    fingerprints[i] = createHash('sha1').update(new Uint8Array(wav.samples.buffer)).digest('hex');
  });
  const firstByPrint = new Map<string, string>();
  const duplicates: Record<string, string[]> = {};
  variants.forEach((variant, i) => {
    const first = firstByPrint.get(fingerprints[i]);
    if (first === undefined) firstByPrint.set(fingerprints[i], variant);
    else duplicates[first] = [...(duplicates[first] ?? []), variant];
  });
  return { canonical: [...firstByPrint.values()], duplicates };
}
