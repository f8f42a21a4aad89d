// The waveform triggers defined on 16 kHz audio (DABA, PBSM, VSVC-DSP) refuse a front-end at another rate
// with the same sentence, and the fix that attack offers.

/** Why a trigger defined at 16 kHz cannot run on a front-end at another rate; null when it can. */
export function needs16k(attack: string, frontEnd: { name: string; sampleRate: number }, fix: string): string | null {
  if (frontEnd.sampleRate === 16000) return null;
  return `${attack}'s trigger is defined on 16 kHz audio, but front-end '${frontEnd.name}' runs at ${frontEnd.sampleRate} Hz; ${fix}`;
}
