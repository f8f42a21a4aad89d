// CMU's flite (Debian package `flite`) as a second speech engine of the synthetic corpus, so that a test split
// can be spoken by voices, and by an engine, that the model never heard (issue 37). One process per utterance:
// `flite -voice <v> --setf duration_stretch=<s> --setf f0_shift=<f> -t <word> -o out.wav`.
//
// Debian's flite 2.2 has these voices built in (`flite -lv`): kal (diphone, 8 kHz), kal16 (the same speaker's
// diphones at 16 kHz), awb (Scottish male), rms (US male), slt (US female), all three clustergen at 16 kHz, and
// awb_time, a limited-domain voice that can say only the time of day (it renders "yes" as 0.1 s of noise; left out).
//
// What carries over from the espeak-ng speakers (espeak.ts):
// - timbre: espeak-ng's voice variant becomes flite's speaker, the unit a split holds out. kal and kal16 are one
//   timbre (one speaker, two sample rates), so they always fall in the same split; kal's 8 kHz, upsampled to
//   16 kHz, stays band-limited to 4 kHz, a telephone-band rendering of that speaker.
// - accent: does not carry over. Every flite voice speaks through the same US English lexicon and letter-to-sound
//   rules (awb's Scottish is in the voice, not the pronunciation); the speaker's accent is the voice's own.
// - rate: the same draw in words per minute, relative to each engine's default: duration_stretch = 175 / rate
//   (175 wpm is espeak-ng's default; stretch 1 is flite's).
// - pitch: the same 0-99 draw as the same factor on the voice's own f0: f0_shift = 2^((pitch - 50) / 72). Measured
//   on espeak-ng 1.51 (en-us, "yes no left"): pitch 20 / 50 / 80 gave a median f0 of 77 / 102 / 137 Hz, 0.75x
//   and 1.34x of pitch 50; 2^(-30/72) = 0.75, 2^(30/72) = 1.33. flite follows f0_shift on kal, kal16, awb and slt
//   (measured: kal 98 -> 80 / 123 Hz at 0.8 / 1.25); rms ignores it (its f0 model does not read the feature), so
//   rms speakers differ in rate only.
// - the rest (silence trimming, placement in the second, gain, background noise) is done after synthesis by the
//   corpus itself, the same for every engine.
import { readFile, unlink } from 'node:fs/promises';
import { resample } from '../audio/resample.ts';
import { decodeWav } from '../audio/wav.ts';
import { type Prosody, type RunResult, runProgram, type SpeechEngine, type VoiceCatalog } from './speech-engine.ts';

export const FLITE_INSTALL_HINT = 'install it with `apt-get install -y flite` (macOS: `brew install flite`)';

/** Voices that are one speaker under another name, mapped to the timbre they share. */
const SAME_SPEAKER: Readonly<Record<string, string>> = { kal16: 'kal' };

/** Limited-domain voices: they can say only the sentences of their domain. */
const LIMITED_DOMAIN = /(^|_)time(_|$)/;

/** Runs flite; a missing program becomes an error that says how to install it. */
export function runFlite(program: string, args: string[], okExits: readonly number[] = [0]): Promise<RunResult> {
  return runProgram(program, args, {
    missing: `flite is needed for the synthetic dataset's flite voices (--engines ... flite); ${FLITE_INSTALL_HINT}`,
    okExits,
  });
}

/** 'flite-2.2-current Sep 2018' (flite prints it and exits 1). */
export async function fliteVersion(program = 'flite'): Promise<string> {
  const { stdout, stderr } = await runFlite(program, ['--version'], [0, 1]);
  const match = /version:\s*(.*?)\s*(\(http[^)]*\))?\s*$/m.exec(`${stdout}\n${stderr}`);
  if (!match) throw new Error(`${program} --version printed no version; is it CMU's flite?`);
  return match[1];
}

/** The voices flite has built in, from `flite -lv` ("Voices available: kal awb_time kal16 awb rms slt"), sorted. */
export async function listFliteVoices(program = 'flite'): Promise<string[]> {
  return parseFliteVoiceList((await runFlite(program, ['-lv'])).stdout);
}

export function parseFliteVoiceList(text: string): string[] {
  const match = /Voices available:(.*)/.exec(text);
  if (!match) throw new Error(`flite -lv printed no voice list: '${text.trim()}'`);
  return match[1].trim().split(/\s+/).filter(Boolean).sort();
}

/** flite's settings for an espeak-ng rate (words per minute) and pitch (0-99); see the comment at the top. */
export function fliteProsody({ rate, pitch }: Prosody): { durationStretch: number; f0Shift: number } {
  return { durationStretch: 175 / rate, f0Shift: 2 ** ((pitch - 50) / 72) };
}

/** flite as a speech engine of the synthetic corpus: a timbre is a speaker (kal and kal16 are one). */
export function fliteEngine(program = 'flite'): SpeechEngine {
  let known: Set<string> | undefined;
  return {
    name: 'flite',
    version: () => fliteVersion(program),
    listVoices: async (): Promise<VoiceCatalog> => {
      const all = await listFliteVoices(program);
      const voices = all.filter((v) => !LIMITED_DOMAIN.test(v));
      if (voices.length === 0) throw new Error(`${program} lists no general-purpose voices (it has: ${all.join(' ') || 'none'})`);
      known = new Set(voices);
      const byTimbre: Record<string, string[]> = {};
      for (const voice of voices) {
        const timbre = SAME_SPEAKER[voice] ?? voice;
        byTimbre[timbre] = [...(byTimbre[timbre] ?? []), voice];
      }
      const timbres = Object.keys(byTimbre).sort();
      return {
        timbres,
        pickVoice: (rng, timbre) => {
          const choices = byTimbre[timbre];
          if (!choices) throw new Error(`flite has no timbre '${timbre}' (known: ${timbres.join(', ')})`);
          return choices.length === 1 ? choices[0] : rng.pick(choices);
        },
        voiceRecord: (voice) => ({ variant: SAME_SPEAKER[voice] ?? voice, voice }),
        manifest: {
          voices,
          timbres: Object.fromEntries(timbres.map((t) => [t, byTimbre[t]])),
          leftOut: all.filter((v) => LIMITED_DOMAIN.test(v)),
          prosody: 'duration_stretch = 175 / rate; f0_shift = 2^((pitch - 50) / 72)',
        },
      };
    },
    speak: async (voice, prosody, text, tmpFile) => {
      // flite falls back to its default voice, silently, for a name it does not have.
      if (known && !known.has(voice)) throw new Error(`flite has no voice '${voice}' (known: ${[...known].join(', ')})`);
      const { durationStretch, f0Shift } = fliteProsody(prosody);
      const args = [
        '-voice',
        voice,
        '--setf',
        `duration_stretch=${durationStretch.toFixed(4)}`,
        '--setf',
        `f0_shift=${f0Shift.toFixed(4)}`,
        '-t',
        text,
        '-o',
        tmpFile,
      ];
      await runFlite(program, args);
      try {
        const wav = decodeWav(await readFile(tmpFile), `flite output for '${text}' (${voice}, rate ${prosody.rate}, pitch ${prosody.pitch})`);
        return resample(wav.samples, wav.sampleRate, 16000);
      } finally {
        await unlink(tmpFile).catch(() => {});
      }
    },
  };
}
