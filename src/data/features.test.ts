// Feature extraction: triggers at the waveform and feature stages with relabelling, the disk cache,
// and the defender's stratified clean subset.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { getFrontEnd } from '../audio/frontends.ts';
import { add, memory, mul, narrow, sub, type Tensor, tensor, tidy } from '../torch/index.ts';
import { stratifiedSample } from './feature-set.ts';
import { extractFeatures, type Trigger } from './features.ts';
import { type ClipEntry, readSpeechCommands } from './speech-commands.ts';
import { synthesizeSpeechCommands } from './synth.ts';

const work = mkdtempSync(path.join(tmpdir(), 'kws-features-'));
let clips: ClipEntry[] = [];

/** Silences the first half of every triggered waveform: easy to see in the features. */
const silenceTrigger: Trigger = { id: 'test-silence', domain: 'waveform', apply: (x: Tensor) => mul(x, 0) };
/** Adds 100 to every feature of a triggered clip. */
const offsetTrigger: Trigger = { id: 'test-offset', domain: 'features', apply: (x: Tensor) => add(x, 100) };

describe('feature extraction', () => {
  before(async () => {
    await synthesizeSpeechCommands({ out: path.join(work, 'data'), preset: 'tiny', seed: 3 });
    clips = (await readSpeechCommands(path.join(work, 'data'), { words: 'scd10' })).entries.filter((e) => e.split === 'test').slice(0, 12);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('applies a feature-stage trigger to the chosen clips only and relabels them', async () => {
    const frontEnd = getFrontEnd('mfcc-16k');
    const clean = await extractFeatures(clips, frontEnd);
    const poisoned = await extractFeatures(clips, frontEnd, { poison: { trigger: offsetTrigger, indices: [1, 4], targetLabel: 2, seed: 0 } });
    assert.deepEqual(clean.features.shape, [12, 101, 40]);
    tidy(() => {
      const diff = sub(poisoned.features, clean.features).abs().mean([1, 2]).toArray();
      diff.forEach((d, i) => assert.ok([1, 4].includes(i) ? Math.abs(d - 100) < 1e-3 : d === 0, `clip ${i}: mean change ${d}`));
    });
    assert.deepEqual(
      poisoned.labels.filter((_, i) => i === 1 || i === 4),
      [2, 2],
    );
    assert.deepEqual(
      poisoned.labels.filter((_, i) => i !== 1 && i !== 4),
      clean.labels.filter((_, i) => i !== 1 && i !== 4),
    );
    clean.features.dispose();
    poisoned.features.dispose();
  });

  it('applies a waveform-stage trigger before the front-end', async () => {
    const frontEnd = getFrontEnd('waveform-16k');
    const out = await extractFeatures(clips, frontEnd, { poison: { trigger: silenceTrigger, indices: [0], seed: 0 } });
    tidy(() => {
      assert.equal(narrow(out.features, 0, 0, 1).abs().sum().item(), 0);
      assert.ok(narrow(out.features, 0, 1, 1).abs().sum().item() > 0);
    });
    assert.deepEqual(
      out.labels,
      clips.map((c) => c.label),
      'no target label: clean-label poisoning keeps labels',
    );
    out.features.dispose();
  });

  it('caches by content: the second run reads the cache and gives the same features', async () => {
    const cacheDir = path.join(work, 'cache');
    const frontEnd = getFrontEnd('mfcc-16k');
    const first = await extractFeatures(clips, frontEnd, { cacheDir });
    const second = await extractFeatures(clips, frontEnd, { cacheDir });
    assert.equal(first.cached, false);
    assert.equal(second.cached, true);
    assert.deepEqual(second.features.toArray(), first.features.toArray());
    const poisoned = await extractFeatures(clips, frontEnd, { cacheDir, poison: { trigger: offsetTrigger, indices: [0], targetLabel: 2, seed: 0 } });
    assert.equal(poisoned.cached, false, 'another trigger is another cache entry');
    assert.equal(readdirSync(cacheDir).filter((f) => f.endsWith('.safetensors')).length, 2);
    for (const r of [first, second, poisoned]) r.features.dispose();
  });

  it('rejects poison indices outside the clip list', async () => {
    await assert.rejects(
      extractFeatures(clips, getFrontEnd('mfcc-16k'), { poison: { trigger: offsetTrigger, indices: [99], seed: 0 } }),
      /poison index 99 is outside the 12 clips/,
    );
  });

  it('applies a trigger in groups of triggerRows rows, in clip order, with the same result', async () => {
    const frontEnd = getFrontEnd('mfcc-16k');
    const calls: number[][] = [];
    // scales each row by its own clip index, so a row given the wrong index or skipped shows in the features
    const indexed: Trigger = {
      id: 'test-indexed',
      domain: 'waveform',
      apply: (x: Tensor, _rng, clipIndices) => {
        calls.push([...clipIndices]);
        return mul(x, tensor(Float32Array.from(clipIndices, (i) => 1 + i / 10)).unsqueeze(1));
      },
    };
    const indices = [0, 2, 3, 5, 7, 8, 11];
    const whole = await extractFeatures(clips, frontEnd, { poison: { trigger: indexed, indices, seed: 0 } });
    assert.deepEqual(calls, [indices]);
    calls.length = 0;
    const before = memory().liveTensors;
    const grouped = await extractFeatures(clips, frontEnd, { triggerRows: 3, poison: { trigger: indexed, indices, seed: 0 } });
    assert.deepEqual(calls, [[0, 2, 3], [5, 7, 8], [11]]);
    assert.equal(memory().liveTensors, before + 1, 'only the features survive');
    tidy(() => assert.equal(sub(whole.features, grouped.features).abs().max().item(), 0));
    whole.features.dispose();
    grouped.features.dispose();
    await assert.rejects(
      extractFeatures(clips, frontEnd, { triggerRows: 0, poison: { trigger: indexed, indices, seed: 0 } }),
      /triggerRows must be a positive integer/,
    );
  });

  it('does not leak tensors', async () => {
    const frontEnd = getFrontEnd('mfcc-16k');
    (await extractFeatures(clips, frontEnd)).features.dispose();
    const before = memory().liveTensors;
    (await extractFeatures(clips, frontEnd, { poison: { trigger: offsetTrigger, indices: [0, 1], targetLabel: 2, seed: 0 } })).features.dispose();
    assert.equal(memory().liveTensors, before);
  });
});

describe('stratified clean subset', () => {
  it('takes the ratio from every class, never a poisoned index, repeatably', () => {
    const labels = Array.from({ length: 1000 }, (_, i) => i % 10);
    const poisoned = new Set(Array.from({ length: 100 }, (_, i) => i * 7));
    const subset = stratifiedSample(labels, 0.05, 1, poisoned);
    const perClass = new Array(10).fill(0);
    for (const i of subset) perClass[labels[i]]++;
    assert.ok(
      perClass.every((n) => n >= 4 && n <= 5),
      `per class ${perClass}`,
    );
    assert.ok(subset.every((i) => !poisoned.has(i)));
    assert.deepEqual(stratifiedSample(labels, 0.05, 1, poisoned), subset);
    assert.notDeepEqual(stratifiedSample(labels, 0.05, 2, poisoned), subset);
    assert.throws(() => stratifiedSample(labels, 0, 1), /clean ratio must be in \(0, 1\]/);
  });
});
