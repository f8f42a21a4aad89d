// The espeak-ng program as the synthetic corpus uses it: one process per utterance (specs/data.md), its
// English accents and its voice variants. Nothing here is cached: every caller lists voices afresh.
import { spawn } from 'node:child_process';
import { readFile, unlink } from 'node:fs/promises';
import { decodeWav, type Wav } from '../audio/wav.ts';

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

interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs espeak-ng and collects its output; a missing program becomes an error that says how to install it. */
export function runEspeak(program: string, args: string[], timeoutMs = 30000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ENOENT') reject(new Error(`${program} not found: espeak-ng is needed for the synthetic dataset; ${ESPEAK_INSTALL_HINT}`));
      else reject(new Error(`${program}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else
        reject(
          new Error(`${program} ${args.map(quote).join(' ')} failed (${signal ? `killed by ${signal}` : `exit ${code}`}): ${stderr.trim() || 'no message'}`),
        );
    });
  });
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

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
