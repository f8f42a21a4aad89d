// An attack run's examples made ready for the page: the clean and triggered model inputs of each clip
// (examples/features.safetensors), their STFT spectrograms when the trigger is a sound (the WAV pairs),
// and the WAV files themselves as data: URIs for <audio> players.
import { readFileSync, statSync } from 'node:fs';
import { decodeWav, WavError } from '../audio/wav.ts';
import type { ExampleSet } from './run-folder.ts';
import { featureGrid, type Grid, stftGrid } from './spectrogram.ts';

export interface PreparedExample {
  index: number;
  word: string;
  cleanAudio?: string;
  triggeredAudio?: string;
  /** the model's input, clean and triggered */
  features?: { clean: Grid; triggered: Grid };
  /** STFT spectrograms of the WAV pair (waveform triggers only: a feature trigger has no triggered WAV) */
  stft?: { clean: Grid; triggered: Grid };
}

export interface PreparedExampleSet {
  set: ExampleSet;
  examples: PreparedExample[];
  /** what could not be read, one line each */
  problems: string[];
}

export interface PrepareOptions {
  /** clips shown per run */
  maxExamples?: number;
  /** audio files larger than this are not embedded */
  maxAudioBytes?: number;
}

interface Clip {
  samples: Float32Array;
  sampleRate: number;
  uri?: string;
}

function readClip(file: string, maxBytes: number, problems: string[]): Clip | undefined {
  try {
    const bytes = readFileSync(file);
    const wav = decodeWav(bytes, file);
    const uri = statSync(file).size <= maxBytes ? `data:audio/wav;base64,${bytes.toString('base64')}` : undefined;
    if (!uri) problems.push(`${file}: larger than ${maxBytes} bytes, not embedded`);
    return { samples: wav.samples, sampleRate: wav.sampleRate, uri };
  } catch (err) {
    problems.push(err instanceof WavError ? err.message : `${file}: ${(err as Error).message}`);
    return undefined;
  }
}

interface FeatureArrays {
  shape: number[];
  clean: Float32Array;
  triggered: Float32Array;
}

/** Both tensors of examples/features.safetensors as plain arrays (libtorch is loaded only when a report needs it). */
async function readFeatures(file: string): Promise<FeatureArrays> {
  const { loadSafetensors } = await import('../torch/io/safetensors.ts');
  const { tensors } = loadSafetensors(file);
  try {
    const clean = tensors.get('clean');
    const triggered = tensors.get('triggered');
    if (!clean || !triggered) throw new Error(`${file}: needs tensors 'clean' and 'triggered', has ${[...tensors.keys()].join(', ') || 'none'}`);
    if (clean.shape.join() !== triggered.shape.join() || (clean.shape.length !== 2 && clean.shape.length !== 3)) {
      throw new Error(`${file}: 'clean' [${clean.shape}] and 'triggered' [${triggered.shape}] must both be [N, frames, coefficients] or [N, samples]`);
    }
    return { shape: clean.shape, clean: clean.toFloat32Array(), triggered: triggered.toFloat32Array() };
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

function sampleRateOf(frontEnd: string | undefined, clip: Clip | undefined): number {
  if (clip) return clip.sampleRate;
  return frontEnd?.includes('44k') ? 44100 : 16000;
}

/** Example k's grids from the feature arrays: a heatmap of [frames, coefficients], or the STFT of [samples]. */
function featureGrids(f: FeatureArrays, k: number, seconds: number, frontEnd: string | undefined, sampleRate: number): PreparedExample['features'] {
  const per = f.shape.slice(1).reduce((a, b) => a * b, 1);
  const part = (a: Float32Array) => a.subarray(k * per, (k + 1) * per);
  if (f.shape.length === 2) return { clean: stftGrid(part(f.clean), sampleRate), triggered: stftGrid(part(f.triggered), sampleRate) };
  const [, frames, bins] = f.shape;
  return { clean: featureGrid(part(f.clean), frames, bins, seconds, frontEnd), triggered: featureGrid(part(f.triggered), frames, bins, seconds, frontEnd) };
}

export async function prepareExamples(set: ExampleSet, opts: PrepareOptions = {}): Promise<PreparedExampleSet> {
  const maxExamples = opts.maxExamples ?? 3;
  const maxAudioBytes = opts.maxAudioBytes ?? 2_000_000;
  const problems: string[] = [];
  let features: FeatureArrays | undefined;
  if (set.features) {
    try {
      features = await readFeatures(set.features);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  const count = Math.min(maxExamples, Math.max(set.pairs.length, features?.shape[0] ?? 0));
  const examples: PreparedExample[] = [];
  for (let k = 0; k < count; k++) {
    const pair = set.pairs.find((p) => p.index === k) ?? { index: k, word: '' };
    const clean = pair.cleanWav ? readClip(pair.cleanWav, maxAudioBytes, problems) : undefined;
    const triggered = pair.triggeredWav ? readClip(pair.triggeredWav, maxAudioBytes, problems) : undefined;
    const seconds = clean ? clean.samples.length / clean.sampleRate : 1;
    const example: PreparedExample = { index: k, word: pair.word, cleanAudio: clean?.uri, triggeredAudio: triggered?.uri };
    if (features && k < features.shape[0]) example.features = featureGrids(features, k, seconds, set.job.frontEnd, sampleRateOf(set.job.frontEnd, clean));
    if (clean && triggered) example.stft = { clean: stftGrid(clean.samples, clean.sampleRate), triggered: stftGrid(triggered.samples, triggered.sampleRate) };
    examples.push(example);
  }
  return { set, examples, problems };
}
