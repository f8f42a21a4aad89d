// Public surface of src/audio/effects: the DSP the waveform-domain backdoor attacks need (specs/attacks.md §3, §4, §6, §7).
export { type FormantWarpOptions, formantWarp } from './formant-warp.ts';
export {
  type ChorusOptions,
  chorus,
  distortion,
  gain,
  type JingleStyle,
  jingleStyle,
  jingleStyles,
  type LadderFilterOptions,
  type LadderMode,
  ladderFilter,
  type PhaserOptions,
  phaser,
} from './jingle.ts';
export { mapRows } from './map-rows.ts';
export { type MusicClip, type MusicNote, type MusicOptions, type MusicPoolOptions, musicClip, musicPool } from './music.ts';
export { type PhaseVocoderOptions, pitchShift, rationalApproximation, timeStretch } from './pitch-shift.ts';
