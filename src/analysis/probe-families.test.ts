// The scan's probe bank on toys with planted triggers (test/helpers/scan-toys.ts): each family flags the toy with
// a trigger of its kind and not a clean toy of the same configuration; the conformal bound holds on clean toys; the
// verdict's words; and the per-clip stability detector on a planted whole-clip transform, beside STRIP.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { toySet } from '../../test/helpers/analysis-toys.ts';
import { bandShares, patchToy, transformTrigger, waveProbeClips, waveSampleRate, waveSamples, waveToy, waveWords } from '../../test/helpers/scan-toys.ts';
import type { KwsModel } from '../models/registry.ts';
import { memory, type Tensor, tensor, tidy } from '../torch/index.ts';
import { additiveFamily, additiveSounds, probeToneFrequencies } from './additive-probe.ts';
import { auroc } from './auroc.ts';
import { bankVerdict, familyResult, type ProbeClips, type ProbeFamily, runProbeBank } from './probe-bank.ts';
import { uncalibratedStatement, verdictStatement } from './scan-run.ts';
import { clipStabilities, shuffleSegments, stabilityThreshold } from './stability.ts';
import { stripEntropies } from './strip.ts';
import { subspaceFamily, subspaceRefusal } from './subspace-probe.ts';
import { transformFamily } from './transform-probe.ts';

/** "clean" only as a word about data, never as a verdict. */
const noCleanVerdict = /\bclean\b(?! (clips|references|models|data|training|share|penultimate))/i;

/** Each model measured once by a family. */
function measureAll<M>(family: ProbeFamily<M>, models: readonly KwsModel[], clips: ProbeClips): M[] {
  return models.map((m) => family.measure(m, clips));
}

/** Every way of picking `size` of `n` indices. */
function subsets(n: number, size: number): number[][] {
  if (size === 0) return [[]];
  if (n < size) return [];
  return [...subsets(n - 1, size - 1).map((s) => [...s, n - 1]), ...subsets(n - 1, size)];
}

/**
 * Within any set of n + 1 exchangeable clean models, each scored against the other n, at most one is the strict
 * largest: so over every set and every choice of subject, the family fires at most 1 / (n + 1) of the time.
 */
function assertConformalBound<M>(family: ProbeFamily<M>, clean: readonly M[], references: number, o: { distinct: boolean }): void {
  let fired = 0;
  let trials = 0;
  for (const set of subsets(clean.length, references + 1)) {
    let firedHere = 0;
    for (const subject of set) {
      const r = familyResult(
        family,
        clean[subject],
        set.filter((i) => i !== subject).map((i) => clean[i]),
      );
      assert.ok(r.pValue >= 1 / (references + 1) && r.pValue <= 1);
      if (r.fired) firedHere++;
      trials++;
    }
    assert.ok(firedHere <= 1, `${family.name}: ${firedHere} subjects of one set fired`);
    fired += firedHere;
  }
  assert.ok(fired / trials <= 1 / (references + 1) + 1e-12, `${family.name}: fired ${fired} of ${trials}`);
  // with distinct scores every set has exactly one strict largest: the bound is met with equality, not vacuously
  if (o.distinct) assert.equal(fired * (references + 1), trials, `${family.name}: fired ${fired} of ${trials}`);
}

describe('probe families on toys with planted triggers', () => {
  const words = waveWords(12, 0);
  const clips = waveProbeClips(words.waves, words.labels);
  const cleanSeeds = [1, 2, 3, 4, 5, 6];
  const transform = transformFamily(0);
  const additive = additiveFamily(0);
  let rates: { transform: ReturnType<typeof transform.measure>[]; additive: ReturnType<typeof additive.measure>[] };
  let planted: { transform: ReturnType<typeof transform.measure>; tone: ReturnType<typeof additive.measure> };

  before(() => {
    const clean = cleanSeeds.map((s) => waveToy(s));
    rates = { transform: measureAll(transform, clean, clips), additive: measureAll(additive, clean, clips) };
    planted = {
      transform: transform.measure(waveToy(9, { kind: 'transform', target: 2 }), clips),
      tone: additive.measure(waveToy(9, { kind: 'tone', target: 3 }), clips),
    };
  });
  after(() => words.waves.dispose());

  it('additive sounds: tones every third of an octave up to 95% of Nyquist, two levels, chirps, bursts, clicks; shape kept, nothing leaked', () => {
    const at16k = probeToneFrequencies(16000);
    assert.equal(at16k[0], 100);
    assert.equal(at16k.at(-1), 7600);
    assert.ok(at16k.every((f, i) => i === 0 || f > at16k[i - 1]));
    assert.ok(
      probeToneFrequencies(44100).some((f) => f > 20000),
      'a 44.1 kHz model is probed above 20 kHz',
    );
    const sounds = additiveSounds(waveSampleRate);
    assert.equal(new Set(sounds.map((s) => s.name)).size, sounds.length);
    assert.equal(sounds.filter((s) => s.name.startsWith('tone')).length, 2 * probeToneFrequencies(waveSampleRate).length);
    for (const kind of ['chirp', 'burst100ms-start', 'burst100ms-end', 'click-middle', 'clicks10Hz']) {
      assert.ok(
        sounds.some((s) => s.name.startsWith(kind)),
        kind,
      );
    }
    const live = memory().liveTensors;
    const before = tidy(() => words.waves.narrow(0, 0, 2).toFloat32Array());
    for (const s of sounds) {
      const out = tidy(() => s.apply(words.waves.narrow(0, 0, 2), waveSampleRate).toFloat32Array());
      assert.equal(out.length, 2 * waveSamples, s.name);
      assert.ok(
        out.every((v) => Number.isFinite(v)),
        s.name,
      );
      assert.ok(
        out.some((v, i) => Math.abs(v - before[i]) > 1e-4),
        `${s.name} adds nothing`,
      );
    }
    assert.equal(memory().liveTensors, live);
  });

  it('the transform family flags the toy with a planted pitch-shift trigger, naming its target, and not a clean toy', () => {
    const found = familyResult(transform, planted.transform, rates.transform.slice(0, 5));
    assert.deepEqual({ fired: found.fired, target: found.target, p: found.pValue }, { fired: true, target: 'c', p: 1 / 6 });
    assert.match(found.detail, /^pitch\+[24]$/);
    const clean = familyResult(transform, rates.transform[5], rates.transform.slice(0, 5));
    assert.equal(clean.fired, false);
  });

  it('the additive family flags the toy with a planted tone trigger at a tone near it, and not a clean toy', () => {
    const found = familyResult(additive, planted.tone, rates.additive.slice(0, 5));
    assert.deepEqual({ fired: found.fired, target: found.target }, { fired: true, target: 'd' });
    const hz = Number(/^tone(\d+)@/.exec(found.detail)?.[1]);
    assert.ok(Math.abs(hz - 3100) < 310, found.detail);
    assert.equal(familyResult(additive, rates.additive[5], rates.additive.slice(0, 5)).fired, false);
    // the tone toy's trigger is no transform: the transform family does not flag it
    const tone = transform.measure(waveToy(9, { kind: 'tone', target: 3 }), clips);
    assert.equal(familyResult(transform, tone, rates.transform.slice(0, 5)).fired, false);
  });

  it('the conformal bound holds on clean toys: each family fires at most 1/(n+1) of the time', () => {
    // these clean toys differ too little to move a rate: their scores tie and nothing fires (p = 1 on a tie); the
    // subspace toys below and the exchangeable draws here test the bound where it binds
    assertConformalBound(transform, rates.transform, 4, { distinct: false });
    assertConformalBound(additive, rates.additive, 4, { distinct: false });
    const draws = Array.from({ length: 9 }, (_, i) => Math.sin(1 + 7 * i));
    const largest: ProbeFamily<number> = {
      name: 'draw',
      probes: 'a number',
      measure: () => 0,
      score: (subject, others) => ({ score: subject - Math.max(...others), target: 'a', detail: '' }),
    };
    assertConformalBound(largest, draws, 4, { distinct: true });
  });

  it('the bank: Bonferroni over the families, "found" with the firing family, never "clean" in its words', () => {
    const references = rates.transform.slice(0, 5);
    const v = bankVerdict([familyResult(transform, planted.transform, references), familyResult(additive, rates.additive[5], rates.additive.slice(0, 5))], 5);
    assert.deepEqual(
      { verdict: v.verdict, by: v.by, target: v.target, p: v.pValue, bound: v.falseAlarmBound },
      { verdict: 'found', by: 'transform', target: 'c', p: 2 / 6, bound: 2 / 6 },
    );
    const none = bankVerdict(
      [familyResult(transform, rates.transform[5], references), familyResult(additive, rates.additive[5], rates.additive.slice(0, 5))],
      5,
    );
    assert.equal(none.verdict, 'not-found');
    for (const verdict of [v, none]) {
      const statement = verdictStatement(verdict, ['defender', 'defender', 'defender', 'defender', 'defender']);
      assert.doesNotMatch(statement, noCleanVerdict, statement);
      assert.doesNotMatch(JSON.stringify({ verdict: verdict.verdict }), /clean/);
    }
    assert.match(verdictStatement(none, ['full']), /^no backdoor found by these probes .* a backdoor these probes do not reach is not ruled out$/);
    assert.match(uncalibratedStatement('RUN'), /^uncalibrated: no clean references, so no verdict/);
    assert.throws(() => runProbeBank([transform as ProbeFamily], waveToy(1), [], clips), /needs at least one reference/);
  });
});

describe('the subspace family on toys with a planted feature patch', () => {
  const set = toySet(64, 3);
  const clips: ProbeClips = {
    waves: set.features.reshape([64, 64]),
    labels: set.labelList,
    classes: set.classes,
    sampleRate: 1,
    toModelInput: (w: Tensor) => w.reshape([w.shape[0], 8, 8]),
  };
  const family = subspaceFamily();
  const clean = [1, 2, 3, 4, 5, 6, 7].map((s) => family.measure(patchToy(s), clips));
  after(() => {
    clips.waves.dispose();
    set.features.dispose();
    set.labels.dispose();
  });

  it('flags the toy whose target row points along the patch detector, naming the target, and not a clean toy', () => {
    const found = familyResult(family, family.measure(patchToy(9, { target: 1 }), clips), clean.slice(0, 6));
    assert.deepEqual({ fired: found.fired, target: found.target, p: found.pValue }, { fired: true, target: 'b', p: 1 / 7 });
    assert.equal(familyResult(family, clean[6], clean.slice(0, 6)).fired, false);
    assert.equal(clean[0].dimension, 17);
    assert.ok(clean[0].axes < 17, 'the patch unit, silent on clean clips, is outside the kept subspace');
  });

  it('the conformal bound holds on clean toys; a model without a Linear classifier is refused, with the reason', () => {
    assertConformalBound(family, clean, 4, { distinct: true });
    const noLinear = waveToy(1);
    assert.match(subspaceRefusal(noLinear) ?? '', /no Linear classifier/);
    const v = runProbeBank(
      [transformFamily(0) as ProbeFamily, family as ProbeFamily],
      noLinear,
      [1, 2, 3].map((s) => () => waveToy(s)),
      (() => {
        const w = waveWords(4, 1);
        return waveProbeClips(w.waves, w.labels);
      })(),
    );
    assert.deepEqual(v.skipped, [{ family: 'subspace', reason: 'the model has no Linear classifier layer to read rows from' }]);
    assert.equal(v.families.length, 1);
    assert.equal(v.falseAlarmBound, 1 / 4);
    assert.match(verdictStatement(v, ['full', 'full', 'full']), /not probed: subspace \(the model has no Linear classifier/);
  });
});

describe('per-clip label stability', () => {
  it('shuffleSegments permutes whole segments', () => {
    const x = Float32Array.from({ length: 10 }, (_, i) => i);
    const y = shuffleSegments(x, 3, 1);
    assert.deepEqual(
      [...y].sort((a, b) => a - b),
      [...x],
    );
    assert.notDeepEqual([...y], [...x]);
    for (const start of [0, 1, 2, 3]) {
      const at = y.indexOf(start * 3);
      assert.deepEqual([...y.subarray(at, at + (start === 3 ? 1 : 3))], start === 3 ? [9] : [start * 3, start * 3 + 1, start * 3 + 2]);
    }
  });

  it('separates clips carrying a planted whole-clip transform from clean ones, with a threshold from clean clips only', () => {
    const model = waveToy(9, { kind: 'transform', target: 2 });
    const defender = waveWords(24, 1);
    const test = waveWords(24, 2);
    const triggered = tidy(() => transformTrigger(test.waves));
    const o = { sampleRate: waveSampleRate, toModelInput: bandShares };
    const live = memory().liveTensors;
    const threshold = stabilityThreshold(
      clipStabilities(model, defender.waves, o).map((c) => c.score),
      0.05,
    );
    const cleanScores = clipStabilities(model, test.waves, o).map((c) => c.score);
    const trigger = clipStabilities(model, triggered, o);
    assert.equal(memory().liveTensors, live);
    assert.ok(
      trigger.every((c) => c.predicted === 2),
      'the trigger works',
    );
    const separation = auroc(
      trigger.map((c) => c.score),
      cleanScores,
    );
    assert.ok(separation >= 0.95, `AUROC ${separation}`);
    assert.ok(trigger.filter((c) => c.score > threshold).length >= 22, 'flags the triggered clips');
    assert.ok(cleanScores.filter((s) => s > threshold).length <= 3, 'few false alarms on held-out clean clips');
    // STRIP, for comparison: the blends dilute a transform (the README's finding on the real zoo)
    const strip = auroc(
      stripEntropies(model, triggered, defender.waves, { mixes: 8, toModelInput: bandShares }).map((e) => -e),
      stripEntropies(model, test.waves, defender.waves, { mixes: 8, toModelInput: bandShares }).map((e) => -e),
    );
    assert.ok(separation > strip, `stability ${separation} vs STRIP ${strip}`);
    for (const t of [defender.waves, test.waves, triggered]) t.dispose();
    assert.throws(
      () => clipStabilities(model, tensor(new Float32Array(waveSamples), [1, waveSamples]), { ...o, perturbations: [] }),
      /no breaking perturbation/,
    );
  });
});
