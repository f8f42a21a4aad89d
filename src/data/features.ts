// From clips on disk to features in memory, through an optional trigger, with an on-disk cache keyed
// by everything that determines the result (files, front-end, trigger and poisoned indices), so a
// second run skips extraction (specs/data.md Features).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { applyInBatches, type FrontEnd } from '../audio/frontends.ts';
import { cat, keep, noGrad, type Tensor, tensor, tidy } from '../torch/index.ts';
import { loadSafetensors, saveSafetensors } from '../torch/io/safetensors.ts';
import { call } from '../torch/ops/dispatch.ts';
import { type FeatureSet, makeFeatureSet } from './feature-set.ts';
import { createRng, type Rng } from './rng.ts';
import { type ClipEntry, loadClip } from './speech-commands.ts';

/** A backdoor trigger as the data layer sees it; the attacks fill in real ones. */
export interface Trigger {
  /** stable identity for caches: the attack's name and parameters */
  id: string;
  /** 'waveform': applied to [B, samples] audio before the front-end; 'features': to its output */
  domain: 'waveform' | 'features';
  /**
   * The triggered version of `batch` (rows in the order of `clipIndices`, their positions in the clip
   * list). Randomness per clip should come from the clip's index, not from `rng`'s stream, so that one
   * clip's result does not depend on which others are poisoned with it.
   */
  apply(batch: Tensor, rng: Rng, clipIndices: readonly number[]): Tensor;
}

export interface PoisonSpec {
  trigger: Trigger;
  /** positions in the clip list that get the trigger */
  indices: number[];
  /** their new label (dirty-label attacks); omit to keep the true labels (clean-label attacks) */
  targetLabel?: number;
  seed: number;
}

export interface ExtractOptions {
  cacheDir?: string;
  poison?: PoisonSpec;
  /** clips read and transformed at a time (bounds memory) */
  chunkSize?: number;
  /** poisoned rows a trigger transforms at a time (default TRIGGER_ROWS; bounds a spectral trigger's memory) */
  triggerRows?: number;
  onProgress?: (done: number, total: number) => void;
}

function cacheKey(clips: ClipEntry[], frontEnd: FrontEnd, poison: PoisonSpec | undefined): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ v: 1, frontEnd: frontEnd.name, rate: frontEnd.sampleRate, samples: frontEnd.inputSamples, shape: frontEnd.outputShape }));
  for (const c of clips) {
    const s = statSync(c.path);
    hash.update(`${c.path}\0${s.size}\0${s.mtimeMs}\0${c.label}\n`);
  }
  if (poison) hash.update(JSON.stringify({ trigger: poison.trigger.id, indices: poison.indices, target: poison.targetLabel ?? null, seed: poison.seed }));
  return hash.digest('hex').slice(0, 24);
}

/**
 * Trigger rows transformed at a time. A spectral trigger (PBSM's pitch shift, VSVC-DSP's STFT) holds several
 * STFTs of every row it is given: 512 rows at once peaked at 5.3 GB live and grew the caching allocator to
 * 6.6 GB (PBSM, 1,000 test clips, 2026-12-03), enough for two attack runs side by side to exhaust 24 GB.
 * Triggers see each row's clip index and are applied row by row in order, so the split does not change them.
 */
export const TRIGGER_ROWS = 64;

/** Rows of `batch` at `rows` replaced by fn(those rows); the trigger sees each row's clip index (offset + row). */
function applyToRows(batch: Tensor, rows: number[], offset: number, groupSize: number, fn: (x: Tensor, clipIndices: number[]) => Tensor): Tensor {
  let out = batch;
  for (let start = 0; start < rows.length; start += groupSize) {
    const group = rows.slice(start, start + groupSize);
    const next = tidy(() => {
      const index = tensor(BigInt64Array.from(group, BigInt));
      const changed = fn(
        call('aten::index_select', '', [out.handle, 0, index.handle]),
        group.map((r) => r + offset),
      );
      if (changed.shape.join(',') !== [group.length, ...batch.shape.slice(1)].join(',')) {
        throw new Error(`trigger changed the shape of its batch: [${group.length}, ${batch.shape.slice(1).join(', ')}] became [${changed.shape.join(', ')}]`);
      }
      return call('aten::index_copy', '', [out.handle, 0, index.handle, changed.handle]);
    });
    if (out !== batch) out.dispose();
    out = next;
  }
  return out;
}

/** Waveforms [clips, inputSamples] at the front-end's rate (short clips padded, long ones cut). */
export async function waveformsOf(clips: readonly (ClipEntry | string)[], frontEnd: FrontEnd): Promise<Tensor> {
  const data = new Float32Array(clips.length * frontEnd.inputSamples);
  for (let i = 0; i < clips.length; i++) {
    const samples = await loadClip(clips[i], { length: frontEnd.inputSamples, sampleRate: frontEnd.sampleRate, resample: true });
    data.set(samples as Float32Array, i * frontEnd.inputSamples);
  }
  return tensor(data, [clips.length, frontEnd.inputSamples]);
}

/**
 * Features [clips, ...frontEnd.outputShape] and labels for `clips`, with the trigger applied to the
 * poisoned positions (and those relabelled). Cached in cacheDir when given.
 */
export async function extractFeatures(
  clips: ClipEntry[],
  frontEnd: FrontEnd,
  opts: ExtractOptions = {},
): Promise<{ features: Tensor; labels: number[]; cached: boolean }> {
  const labels = clips.map((c) => c.label);
  const poison = opts.poison;
  if (poison) {
    const bad = poison.indices.find((i) => !Number.isInteger(i) || i < 0 || i >= clips.length);
    if (bad !== undefined) throw new Error(`poison index ${bad} is outside the ${clips.length} clips`);
    if (poison.targetLabel !== undefined) for (const i of poison.indices) labels[i] = poison.targetLabel;
  }
  const cacheFile = opts.cacheDir ? path.join(opts.cacheDir, `features-${cacheKey(clips, frontEnd, poison)}.safetensors`) : null;
  if (cacheFile && existsSync(cacheFile)) {
    const features = tidy(() => loadSafetensors(cacheFile).tensors.get('features'));
    if (features && features.shape[0] === clips.length) return { features: keep(features), labels, cached: true };
    features?.dispose();
  }
  const poisoned = new Set(poison?.indices ?? []);
  const rng = createRng(poison?.seed ?? 0);
  const chunkSize = opts.chunkSize ?? 512;
  const groupSize = opts.triggerRows ?? TRIGGER_ROWS;
  if (!(Number.isInteger(groupSize) && groupSize > 0)) throw new RangeError(`triggerRows must be a positive integer, got ${groupSize}`);
  const parts: Tensor[] = [];
  for (let start = 0; start < clips.length; start += chunkSize) {
    const chunk = clips.slice(start, start + chunkSize);
    const rows = chunk
      .map((_, i) => start + i)
      .filter((i) => poisoned.has(i))
      .map((i) => i - start);
    const waves = await waveformsOf(chunk, frontEnd);
    const part = noGrad(() =>
      tidy(() => {
        const triggered =
          poison?.trigger.domain === 'waveform' ? applyToRows(waves, rows, start, groupSize, (x, idx) => poison.trigger.apply(x, rng, idx)) : waves;
        const features = applyInBatches(frontEnd, triggered);
        return poison?.trigger.domain === 'features' ? applyToRows(features, rows, start, groupSize, (x, idx) => poison.trigger.apply(x, rng, idx)) : features;
      }),
    );
    waves.dispose();
    parts.push(keep(part));
    opts.onProgress?.(Math.min(start + chunkSize, clips.length), clips.length);
  }
  const features = keep(tidy(() => (parts.length === 1 ? parts[0].clone() : cat(parts, 0))));
  for (const p of parts) p.dispose();
  if (cacheFile) {
    mkdirSync(path.dirname(cacheFile), { recursive: true });
    saveSafetensors(cacheFile, new Map([['features', features]]), { frontEnd: frontEnd.name, clips: String(clips.length) });
  }
  return { features, labels, cached: false };
}

/** A feature set for one split's clips. */
export async function featureSetOf(
  clips: ClipEntry[],
  classes: string[],
  frontEnd: FrontEnd,
  opts: ExtractOptions = {},
): Promise<FeatureSet & { cached: boolean }> {
  const { features, labels, cached } = await extractFeatures(clips, frontEnd, opts);
  return { ...makeFeatureSet(features, labels, classes), cached };
}

/**
 * Every clip with the trigger, labels kept: the triggered copy of a split on which ASR and RA are measured
 * (the true labels say which clips count), and the analysis's triggered clips.
 */
export function triggeredFeatureSet(
  clips: ClipEntry[],
  classes: string[],
  frontEnd: FrontEnd,
  trigger: Trigger,
  seed: number,
  opts: Pick<ExtractOptions, 'cacheDir' | 'onProgress'> = {},
): Promise<FeatureSet & { cached: boolean }> {
  return featureSetOf(clips, classes, frontEnd, { ...opts, poison: { trigger, indices: clips.map((_, i) => i), seed } });
}
