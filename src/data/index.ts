// Public surface of src/data: datasets on disk (real and synthetic), word sets, splits and the seeded RNG.
//
//   import { loadClip, readSpeechCommands, synthesizeSpeechCommands } from './data/index.ts';
//   await synthesizeSpeechCommands({ out: 'data/synth-scd10', preset: 'small', words: 'scd10', seed: 0 });
//   const ds = await readSpeechCommands('data/synth-scd10', { words: 'scd10' });   // or a real v0.01/v0.02 folder
//   const test = ds.entries.filter((e) => e.split === 'test');
//   const samples = await loadClip(test[0]);   // Float32Array(16000), zero-padded at the end if short

export { ESPEAK_INSTALL_HINT, type EspeakVoices, espeakEngine, espeakVersion, listEspeakVoices } from './espeak.ts';
export {
  batchIndices,
  disposeFeatureSet,
  type FeatureSet,
  gatherBatch,
  makeFeatureSet,
  stratifiedSample,
  subsetOf,
} from './feature-set.ts';
export { type ExtractOptions, extractFeatures, featureSetOf, type PoisonSpec, type Trigger, triggeredFeatureSet, waveformsOf } from './features.ts';
export { FLITE_INSTALL_HINT, fliteEngine, fliteVersion, listFliteVoices } from './flite.ts';
export { createRng, deriveSeed, hashString, type Rng } from './rng.ts';
export {
  type ClipEntry,
  type DatasetInfo,
  type DatasetInfoOptions,
  type DatasetVersion,
  datasetInfo,
  type LoadClipOptions,
  loadClip,
  readSpeechCommands,
  type SpeechCommands,
  type SpeechCommandsOptions,
  type SplitMethod,
  type WordSelection,
} from './speech-commands.ts';
export { type Prosody, SPEECH_ENGINE_NAMES, type SpeechEngine, type SpeechEngineName, type VoiceCatalog } from './speech-engine.ts';
export { SPLIT_NAMES, type SplitName } from './splits.ts';
export {
  readSynthManifest,
  type SplitCounts,
  SYNTH_PRESETS,
  type SynthManifest,
  type SynthOptions,
  type SynthPreset,
  type SynthSplitSummary,
  type SynthSummary,
  synthesizeSpeechCommands,
} from './synth.ts';
export { SCD10_WORDS, SCD30_WORDS, V2_EXTRA_WORDS, type WordSetName, wordSet } from './words.ts';
