// kwshield analyze and scan end to end on a toy Speech Commands folder (three words of tones, written here
// in a second) and untrained ResNets saved as run folders, one with a BadNets trigger and poison plan: the
// --json output, the files and their format, and the errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cleanFeatures, defenderClips } from '../src/analysis/run-data.ts';
import { wavFiles } from '../src/analysis/scan-run.ts';
import { badnetsOptions } from '../src/attacks/badnets/badnets.ts';
import { loadPlan, saveArtifact, savePlan } from '../src/attacks/index.ts';
import { baseArtifact } from '../src/attacks/trigger.ts';
import { getFrontEnd } from '../src/audio/frontends.ts';
import { writeWav } from '../src/audio/wav.ts';
import { loadCleanData } from '../src/data/defender-clips.ts';
import { disposeFeatureSet } from '../src/data/feature-set.ts';
import { createRng } from '../src/data/rng.ts';
import { readManifest, saveModel } from '../src/models/checkpoint.ts';
import { buildModel, configForFrontEnd } from '../src/models/index.ts';
import { resolveOptions } from '../src/options/options.ts';
import { manualSeed } from '../src/torch/index.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'test', 'helpers', 'analysis-cli.mjs');
const work = mkdtempSync(path.join(tmpdir(), 'kws-analysis-cli-'));
const env = { ...process.env, KWSHIELD_CACHE: path.join(work, 'cache'), KWSHIELD_THREADS: '2' };
const data = path.join(work, 'data');
const words = ['yes', 'no', 'up'];

function run(args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env, cwd: root });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout.trim().split('\n').pop() as string) };
}

/** Three words of noisy tones (a frequency per word), 8 training, 2 validation and 2 test clips each. */
async function writeToyData(): Promise<void> {
  const rng = createRng(5);
  const validation: string[] = [];
  const testing: string[] = [];
  for (const [w, word] of words.entries()) {
    mkdirSync(path.join(data, word), { recursive: true });
    for (let k = 0; k < 12; k++) {
      const name = `s${k}_nohash_0.wav`;
      const samples = Float32Array.from({ length: 16000 }, (_, t) => 0.3 * Math.sin((2 * Math.PI * (300 + 400 * w) * t) / 16000) + 0.05 * rng.normal());
      await writeWav(path.join(data, word, name), samples, 16000);
      if (k >= 8) (k < 10 ? validation : testing).push(`${word}/${name}`);
    }
  }
  writeFileSync(path.join(data, 'validation_list.txt'), `${validation.join('\n')}\n`);
  writeFileSync(path.join(data, 'testing_list.txt'), `${testing.join('\n')}\n`);
}

/** An untrained ResNet of `classes` saved as a run folder. */
function writeRun(dir: string, classes: string[], seed: number, provenance: Record<string, unknown> = {}): void {
  mkdirSync(dir, { recursive: true });
  manualSeed(seed);
  const { config, inputShape } = configForFrontEnd('resnet', 'mfcc-16k');
  const model = buildModel('resnet', { ...config, classes: classes.length });
  saveModel(dir, model, { model: 'resnet', config, frontEnd: 'mfcc-16k', inputShape, classes, provenance: { data, ...provenance } });
  model.dispose();
}

const backdoored = path.join(work, 'backdoored');
const purified = path.join(work, 'purified');
const stranger = path.join(work, 'stranger');
const references = path.join(work, 'references');
const poisoned = path.join(work, 'poisoned');

describe('kwshield analyze and scan', () => {
  before(async () => {
    await writeToyData();
    writeRun(backdoored, words, 1);
    writeRun(purified, words, 2);
    writeRun(stranger, ['yes', 'no', 'left'], 3);
    for (const seed of [4, 5, 6]) writeRun(path.join(references, `ref-s${seed}`), words, seed);
    writeRun(poisoned, words, 7, { attack: 'badnets' });
    const artifact = baseArtifact('badnets', resolveOptions('badnets', badnetsOptions, {}), 0, 'mfcc-16k');
    artifact.data = { variant: 'features' };
    saveArtifact(backdoored, artifact);
    const trainFiles = words.flatMap((w) => Array.from({ length: 8 }, (_, k) => `${w}/s${k}_nohash_0.wav`));
    savePlan(
      backdoored,
      { attack: 'badnets', labelMode: 'dirty', target: 'up', targetLabel: 2, indices: [0, 9], poisonRatio: 0.1, trainClips: 24, seed: 0 },
      trainFiles,
    );
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('analyze --attack-of --compare writes analysis.json (the agreed format) and CSVs for both models', () => {
    const out = path.join(work, 'analysis');
    const r = run([
      'analyze',
      '--model',
      backdoored,
      '--data',
      data,
      '--attack-of',
      backdoored,
      '--compare',
      purified,
      '--clean-ratio',
      '0.5',
      '--out',
      out,
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const result = r.json();
    assert.equal(result.kind, 'analysis');
    assert.equal(result.attack, 'badnets');
    assert.equal(result.analyses.length, 2);
    // Half of each word's training clips, never a poisoned one (plan indices 0 and 9: yes/s0, no/s1).
    assert.equal(result.cleanClips, 12);
    for (const name of ['analysis.json', 'gradients.csv', 'zones.csv', 'embedding.csv', 'analysis-after.json', 'zones-after.csv']) {
      assert.ok(existsSync(path.join(out, name)), name);
    }
    const a = JSON.parse(readFileSync(path.join(out, 'analysis.json'), 'utf8'));
    assert.equal(a.format, 'kwshield-analysis');
    assert.equal(a.version, 1);
    assert.equal(a.model, path.resolve(backdoored));
    assert.equal(a.attack, 'badnets');
    assert.equal(a.label, 'before');
    assert.equal(a.gradients.layer, 'layer3.1.conv2');
    assert.equal(a.gradients.norm, 'l1');
    assert.equal(a.gradients.batches, 1);
    assert.equal(a.gradients.neurons.length, 64);
    for (const n of a.gradients.neurons) {
      assert.ok(Number.isInteger(n.index) && Number.isFinite(n.mean) && Number.isFinite(n.variance));
      assert.ok(['clean', 'backdoor', 'hybrid', 'redundant'].includes(n.zone));
    }
    assert.deepEqual(a.zones.layers, ['layer3.1.conv2', 'conv2d']);
    assert.equal(a.zones.neurons.length, 128);
    const counts = a.zones.counts;
    assert.equal(counts.clean + counts.backdoor + counts.hybrid + counts.redundant, 128);
    for (const n of a.zones.neurons) assert.ok(typeof n.layer === 'string' && Number.isFinite(n.clc) && Number.isFinite(n.blc) && typeof n.zone === 'string');
    assert.equal(a.embedding.method, 'tsne');
    assert.equal(a.embedding.seed, 0);
    assert.equal(a.embedding.points.length, 24);
    assert.equal(a.embedding.points.filter((p: { triggered: boolean }) => p.triggered).length, 12);
    for (const p of a.embedding.points) assert.ok(Number.isFinite(p.x) && Number.isFinite(p.y) && words.includes(p.label));
    const b = JSON.parse(readFileSync(path.join(out, 'analysis-after.json'), 'utf8'));
    assert.equal(b.label, 'after');
    assert.equal(b.model, path.resolve(purified));
    const csv = readFileSync(path.join(out, 'zones.csv'), 'utf8').trim().split('\n');
    assert.equal(csv[0], 'layer,index,clc,blc,zone');
    assert.equal(csv.length, 129);
    assert.equal(readFileSync(path.join(out, 'gradients.csv'), 'utf8').split('\n')[0], 'layer,index,l1_mean,l1_variance,l2_mean,l2_variance,zone');
  });

  it('analyze without --attack-of says there are no zones; --layers and --embedding are checked', () => {
    const out = path.join(work, 'analysis-plain');
    const r = run(['analyze', '--model', backdoored, '--layers', 'conv2d', '--embedding', 'pca', '--clean-ratio', '0.5', '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.json().notes.join(' '), /no --attack-of/);
    const a = JSON.parse(readFileSync(path.join(out, 'analysis.json'), 'utf8'));
    assert.equal(a.zones, undefined);
    assert.equal(a.attack, undefined);
    assert.equal(a.gradients.layer, 'conv2d');
    assert.equal(a.embedding.method, 'pca');
    assert.ok(a.embedding.points.every((p: { triggered: boolean }) => !p.triggered));
    assert.ok(!existsSync(path.join(out, 'zones.csv')));
    const badLayer = run(['analyze', '--model', backdoored, '--layers', 'layer9.conv', '--out', out]);
    assert.equal(badLayer.code, 1);
    assert.match(badLayer.stderr, /'layer9.conv' is not a neuron layer of this model; its neuron layers are conv, layer1.0.conv1/);
    const badMethod = run(['analyze', '--model', backdoored, '--embedding', 'umap', '--out', out]);
    assert.equal(badMethod.code, 2);
    assert.match(badMethod.stderr, /--embedding must be tsne or pca, got 'umap'/);
  });

  it('scan without references says "uncalibrated" and gives scores only: the anomaly index, the smallest mask, per-class numbers', () => {
    const r = run(['scan', '--model', backdoored, '--data', data, '--clean-ratio', '0.5', '--steps', '3', '--batch-size', '2', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = r.json();
    assert.equal(s.kind, 'scan');
    assert.equal(s.verdict, 'uncalibrated');
    assert.match(s.statement, /^uncalibrated: no clean references, so no verdict; .*kwshield references build --like /);
    assert.ok(Number.isFinite(s.anomalyIndex));
    assert.equal(s.threshold, undefined);
    assert.ok(words.includes(s.smallestMask));
    assert.equal(s.perClass.length, 3);
    for (const c of s.perClass) assert.ok(words.includes(c.class) && c.maskL1 > 0 && c.maskL1 < 1 && Number.isFinite(c.anomalyIndex));
    assert.deepEqual(
      s.gradientSignature.layers.map((l: { layer: string }) => l.layer),
      ['layer3.1.conv2', 'conv2d'],
    );
    assert.deepEqual({ steps: s.neuralCleanse.steps, batchSize: s.neuralCleanse.batchSize }, { steps: 3, batchSize: 2 });
    const text = run(['scan', '--model', backdoored, '--data', data, '--clean-ratio', '0.5', '--steps', '3', '--batch-size', '2']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^uncalibrated: no clean references, so no verdict/);
    for (const out of [r.stdout, text.stdout]) assert.doesNotMatch(out, /\bclean\b(?! (clips|references|models|data|training))/i, out);
    assert.doesNotMatch(text.stdout, /backdoor(ed)? found|BACKDOORED/);
  });

  it('scan refuses a model whose classes the data does not have', () => {
    const r = run(['scan', '--model', stranger, '--data', data, '--json']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the model's classes do not match the data: .* classifies yes, no, left, but .* has no left/);
    assert.equal(r.stdout, '');
  });

  it('scan --references: "found" or "not-found" by the probe bank (transform, additive, subspace), p conformal and Bonferroni-corrected, the excess recomputable from the rates', () => {
    const r = run(['scan', '--model', backdoored, '--data', data, '--clean-ratio', '0.5', '--references', references, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = r.json();
    assert.equal(s.kind, 'scan');
    assert.ok(['found', 'not-found'].includes(s.verdict), s.verdict);
    assert.equal(s.references, 3);
    assert.equal(s.referenceRuns.length, 3);
    assert.deepEqual(s.referenceShares, ['unrecorded', 'unrecorded', 'unrecorded']);
    assert.equal(s.falseAlarmBound, 3 / 4);
    assert.deepEqual(
      s.families.map((f: { family: string }) => f.family),
      ['transform', 'additive', 'subspace'],
    );
    assert.deepEqual(s.skipped, []);
    const f = s.families[0];
    assert.equal(f.measurements.references.length, 3);
    assert.equal(f.measurements.subject.transforms.length, 18);
    assert.ok(words.includes(f.target));
    type Rates = { transforms: string[]; hits: number[][]; offClass: number[] };
    const rate = (p: Rates, t: number, c: number) => (p.offClass[c] ? p.hits[t][c] / p.offClass[c] : 0);
    let best = Number.NEGATIVE_INFINITY;
    f.measurements.subject.transforms.forEach((_: string, t: number) =>
      words.forEach((_w, c) => {
        best = Math.max(best, rate(f.measurements.subject, t, c) - Math.max(...f.measurements.references.map((p: Rates) => rate(p, t, c))));
      }),
    );
    assert.ok(Math.abs(best - f.score) < 1e-12, `excess ${f.score}, recomputed ${best}`);
    const fired = s.families.filter((x: { score: number; referenceScores: number[] }) => x.referenceScores.every((y) => y < x.score));
    assert.equal(s.verdict, fired.length ? 'found' : 'not-found');
    assert.equal(s.target, fired.length ? s.families.find((x: { family: string }) => x.family === s.by).target : null);
    assert.ok([0.75, 1].includes(s.pValue), `p ${s.pValue}`);
    assert.match(
      s.statement,
      fired.length
        ? /^backdoor found \(target '\w+', by probe \w+, p = 0\.75\) against 3 clean references/
        : /^no backdoor found by these probes \(transform: 18 generic audio transforms.*; additive: additive sounds.*; subspace: /,
    );
    assert.match(s.statement, /false alarms at most 0\.75 \(conformal: 1\/4 per probe family, Bonferroni over 3\)/);
    const text = run(['scan', '--model', backdoored, '--data', data, '--clean-ratio', '0.5', '--references', references]);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(text.stdout.split('\n')[0], s.statement);
    assert.match(text.stdout, /transform \(18 generic audio transforms .*\): score .* p = /);
    assert.match(text.stdout, /additive \(additive sounds: .*\): score .* p = /);
    assert.match(text.stdout, /subspace \(.*\): score .* p = /);
    // "clean" only as a data word (clean clips, clean references), never as a verdict, in the text and in the JSON
    for (const out of [r.stdout, text.stdout]) assert.doesNotMatch(out, /\bclean\b(?! (clips|references|models|data|training))/i, out);
    assert.doesNotMatch(r.stdout, /"verdict":"clean"|"backdoored"/);
    // a folder that holds the scanned model too: it is left out of its own references
    const mixed = run([
      'scan',
      '--model',
      path.join(references, 'ref-s4'),
      '--data',
      data,
      '--clean-ratio',
      '0.5',
      '--references',
      `${references},${purified}`,
      '--json',
    ]);
    assert.equal(mixed.code, 0, mixed.stderr);
    assert.equal(mixed.json().references, 3);
  });

  it('scan --references refuses too few references, the model itself, an attack run and a reference of other classes', () => {
    const few = run(['scan', '--model', backdoored, '--data', data, '--references', `${purified},${path.join(references, 'ref-s4')}`]);
    assert.equal(few.code, 1);
    assert.match(few.stderr, /--references: 2 given, the scan needs at least 3 clean models/);
    const self = run(['scan', '--model', backdoored, '--data', data, '--references', `${references},${backdoored}`]);
    assert.equal(self.code, 1);
    assert.match(self.stderr, /is the model being scanned; a model cannot be its own reference/);
    const attacked = run(['scan', '--model', purified, '--data', data, '--references', `${references},${poisoned}`]);
    assert.equal(attacked.code, 1);
    assert.match(attacked.stderr, /poisoned is a backdoored run \(attack badnets\); references must be clean models/);
    const other = run(['scan', '--model', backdoored, '--data', data, '--references', `${references},${stranger}`]);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /differs from the scanned model in classes \(yes,no,left, the model has yes,no,up\)/);
    const missing = run(['scan', '--model', backdoored, '--data', data, '--references', path.join(work, 'nowhere')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nowhere is not a run folder or a folder of run folders/);
    const mixedFlags = run(['scan', '--model', backdoored, '--data', data, '--references', references, '--steps', '3']);
    assert.equal(mixedFlags.code, 2);
    assert.match(mixedFlags.stderr, /--steps belongs to the uncalibrated Neural Cleanse scores/);
  });

  it("references build trains N references of a run's configuration, skips finished ones, records the share the scan reports", () => {
    const like = path.join(work, 'like');
    writeRun(like, words, 8, { recipe: 'fast', epochs: 1, seed: 8 });
    const out = path.join(work, 'built');
    const first = run(['references', 'build', '--like', like, '--count', '2', '--out', out, '--share', 'defender', '--clean-ratio', '0.5', '--json']);
    assert.equal(first.code, 0, first.stderr);
    const r = first.json();
    assert.deepEqual(
      r.references.map((x: { seed: number; status: string }) => [x.seed, x.status]),
      [
        [100, 'trained'],
        [101, 'trained'],
      ],
    );
    assert.equal(r.epochs, 1);
    for (const x of r.references) {
      const m = readManifest(x.run);
      assert.deepEqual({ model: m.model, frontEnd: m.frontEnd, classes: m.classes }, { model: 'resnet', frontEnd: 'mfcc-16k', classes: words });
      assert.deepEqual(m.provenance?.reference, { like: path.resolve(like), share: 'defender', cleanRatio: 0.5, cleanSeed: 0 });
      assert.equal(m.provenance?.seed, x.seed);
      assert.equal(JSON.parse(readFileSync(path.join(x.run, 'metrics.json'), 'utf8')).epochs, 1);
    }
    const again = run(['references', 'build', '--like', like, '--count', '3', '--out', out, '--share', 'defender', '--clean-ratio', '0.5', '--json']);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(
      again.json().references.map((x: { status: string }) => x.status),
      ['skipped', 'skipped', 'trained'],
    );
    assert.match(again.stderr, /reference 1\/3: .*\(finished, skipped\)/);
    const scan = run(['scan', '--model', like, '--data', data, '--clean-ratio', '0.5', '--references', out]);
    assert.equal(scan.code, 0, scan.stderr);
    assert.match(scan.stdout.split('\n')[0], /against 3 clean references \(trained on the defender's clean share only\)/);
    const otherShare = run(['references', 'build', '--like', like, '--count', '1', '--out', out]);
    assert.equal(otherShare.code, 1);
    assert.match(otherShare.stderr, /holds a reference trained on share 'defender', this call asks for 'full'; give another --out/);
    const ownSeed = run(['references', 'build', '--like', like, '--count', '2', '--seed-base', '7', '--out', path.join(work, 'built-2')]);
    assert.equal(ownSeed.code, 1);
    assert.match(ownSeed.stderr, /the seeds 7-8 include .*like's own seed 8; choose --seed-base above 8/);
    assert.ok(!existsSync(path.join(work, 'built-2')));
    const nowhere = run(['references', 'build', '--like', path.join(work, 'nowhere'), '--count', '1', '--out', path.join(work, 'built-3')]);
    assert.equal(nowhere.code, 1);
    assert.match(nowhere.stderr, /--like .*nowhere: .*model.json not found; it must be a run folder/);
    const badShare = run(['references', 'build', '--like', like, '--count', '1', '--out', out, '--share', 'half']);
    assert.equal(badShare.code, 2);
    assert.match(badShare.stderr, /--share must be full or defender, got 'half'/);
  });

  it("the analysis's clean clips are the defender's: the same features as defend's loadCleanData", async () => {
    const manifest = readManifest(backdoored);
    const exclude = new Set(loadPlan(backdoored).indices);
    const theirs = await loadCleanData(data, manifest, { cleanRatio: 0.5, seed: 3, exclude });
    const { clips, classes } = await defenderClips(data, manifest, { run: backdoored, cleanRatio: 0.5, seed: 3, exclude });
    const ours = await cleanFeatures(clips, classes, getFrontEnd(manifest.frontEnd));
    try {
      assert.deepEqual(ours.labelList, theirs.labelList);
      assert.deepEqual(Array.from(ours.features.toFloat32Array()), Array.from(theirs.features.toFloat32Array()));
    } finally {
      disposeFeatureSet(ours);
      disposeFeatureSet(theirs);
    }
    assert.throws(() => wavFiles(path.join(work, 'nowhere')), /nowhere: no such folder/);
    assert.throws(() => wavFiles(path.join(data, 'validation_list.txt')), /is not a folder of WAV files/);
  });

  it('scan --inputs flags WAV clips by STRIP and by label stability, side by side', () => {
    const inputs = path.join(work, 'inputs');
    mkdirSync(inputs);
    for (const w of words) writeFileSync(path.join(inputs, `${w}.wav`), readFileSync(path.join(data, w, 's10_nohash_0.wav')));
    const r = run(['scan', '--inputs', inputs, '--model', backdoored, '--data', data, '--clean-ratio', '0.5', '--mixes', '4', '--frr', '0.05', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = r.json();
    assert.equal(s.kind, 'inputs');
    assert.equal(s.clips.length, 3);
    assert.deepEqual(
      s.clips.map((c: { file: string }) => c.file),
      ['no.wav', 'up.wav', 'yes.wav'],
    );
    for (const c of s.clips) {
      assert.ok(Number.isFinite(c.strip.entropy) && typeof c.strip.flagged === 'boolean' && words.includes(c.predicted));
      assert.ok(c.stability.score >= -1 && c.stability.score <= 1 && typeof c.stability.flagged === 'boolean');
      assert.ok(Math.abs(c.stability.score - (c.stability.breakingKept - c.stability.preservingKept)) < 1e-12);
    }
    assert.equal(s.flagged.strip, s.clips.filter((c: { strip: { entropy: number } }) => c.strip.entropy < s.strip.threshold).length);
    assert.equal(s.flagged.stability, s.clips.filter((c: { stability: { score: number } }) => c.stability.score > s.stability.threshold).length);
    assert.equal(s.cleanClips, 12);
    assert.deepEqual(s.stability.perturbations.breaking.slice(0, 2), ['reverse', 'shuffle25ms#0']);
    const text = run(['scan', '--inputs', inputs, '--model', backdoored, '--data', data, '--clean-ratio', '0.5', '--mixes', '4', '--frr', '0.05']);
    assert.equal(text.code, 0, text.stderr);
    assert.doesNotMatch(text.stdout, /\bclean\b(?! (clips|references|models|data|training))/i, text.stdout);
    const mixed = run(['scan', '--inputs', inputs, '--model', backdoored, '--steps', '3']);
    assert.equal(mixed.code, 2);
    assert.match(mixed.stderr, /--steps belongs to the model scan/);
  });
});
