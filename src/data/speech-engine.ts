// What the synthetic corpus needs from a speech engine (specs/data.md): its version, its voices grouped by
// timbre (the unit a split holds out), and one utterance spoken as 16 kHz mono samples. One file per engine
// (espeak.ts, flite.ts); each runs its program as a separate process per utterance.
import { spawn } from 'node:child_process';
import type { Rng } from './rng.ts';

export const SPEECH_ENGINE_NAMES = ['espeak-ng', 'flite'] as const;

export type SpeechEngineName = (typeof SPEECH_ENGINE_NAMES)[number];

/** Speaking rate and pitch in espeak-ng's units (words per minute; 0-99, 50 the voice's own); other engines map them. */
export interface Prosody {
  rate: number;
  pitch: number;
}

export interface SpeechEngine {
  readonly name: SpeechEngineName;
  /** The program's version line; a missing program is an error naming the apt-get command that installs it. */
  version(): Promise<string>;
  /** Lists the voices afresh; `tmpDir` and `concurrency` serve engines that render probes to tell voices apart. */
  listVoices(work: { tmpDir: string; concurrency: number }): Promise<VoiceCatalog>;
  /** Speaks `text` with `voice` (a name from the catalog) into `tmpFile`, reads it, deletes it, resamples to 16 kHz. */
  speak(voice: string, prosody: Prosody, text: string, tmpFile: string): Promise<Float32Array>;
}

export interface VoiceCatalog {
  /** Distinct timbres, sorted: a split holds out whole timbres, so a speaker's timbre never crosses splits. */
  timbres: string[];
  /** Draws a voice that renders `timbre` (espeak-ng: the variant in a random English accent; flite: kal or kal16). */
  pickVoice(rng: Rng, timbre: string): string;
  /** A speaker's voice as synth.json records it (espeak-ng: accent and variant; flite: variant and voice). */
  voiceRecord(voice: string): Record<string, string>;
  /** What synth.json records about the engine's voices (lists, merges), beside its version. */
  manifest: Record<string, unknown>;
}

export function isSpeechEngineName(name: string): name is SpeechEngineName {
  return (SPEECH_ENGINE_NAMES as readonly string[]).includes(name);
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs an engine's program and collects its output. A missing program becomes an error that says `missing`
 * (what needs it and the command that installs it); exit codes other than `okExits` are errors with stderr.
 */
export function runProgram(program: string, args: string[], opts: { missing: string; timeoutMs?: number; okExits?: readonly number[] }): Promise<RunResult> {
  const okExits = opts.okExits ?? [0];
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
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30000);
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ENOENT') reject(new Error(`${program} not found: ${opts.missing}`));
      else reject(new Error(`${program}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== null && okExits.includes(code)) resolve({ stdout, stderr });
      else
        reject(
          new Error(`${program} ${args.map(quote).join(' ')} failed (${signal ? `killed by ${signal}` : `exit ${code}`}): ${stderr.trim() || 'no message'}`),
        );
    });
  });
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
