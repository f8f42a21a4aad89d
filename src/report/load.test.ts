import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type SyntheticInputs, writeSyntheticInputs } from '../../test/helpers/report-inputs.ts';
import { type LoadedInputs, loadInputs, MissingInputError } from './load.ts';

describe('loadInputs', () => {
  let root: string;
  let s: SyntheticInputs;
  let loaded: LoadedInputs;
  let resultFiles: { status: string; job: { kind: string } }[];

  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'kwshield-report-load-'));
    s = await writeSyntheticInputs(root, { models: ['resnet'], attacks: ['badnets'], seeds: [0, 1], ratios: [0.1] });
    loaded = loadInputs([s.results]);
    // What the folder holds, read independently of the loader.
    const files = [
      ...readdirSync(s.results).map((f) => path.join(s.results, f)),
      ...readdirSync(path.join(s.results, 'ratios')).map((f) => path.join(s.results, 'ratios', f)),
    ].filter((f) => f.endsWith('.json') && !s.corruptFiles.includes(f));
    resultFiles = files.map((f) => JSON.parse(readFileSync(f, 'utf8')));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('reads every result file of a results folder, nested ones too', () => {
    assert.equal(loaded.jobs.length, resultFiles.length);
    assert.equal(loaded.jobs.filter((j) => j.status === 'failed').length, resultFiles.filter((r) => r.status === 'failed').length);
    assert.equal(loaded.jobs.filter((j) => j.kind === 'defense').length, resultFiles.filter((r) => r.job.kind === 'defense').length);
  });
  it('skips corrupt and unknown files, counts them and says which', () => {
    assert.equal(loaded.skipped, s.corruptFiles.length);
    for (const f of s.corruptFiles)
      assert.ok(
        loaded.warnings.some((w) => w.includes(f)),
        f,
      );
    assert.ok(!loaded.warnings.some((w) => w.includes('index.sqlite')), 'non-JSON files are not inputs');
  });
  it('follows runs.* links to the defense curve, the examples and both analyses', () => {
    assert.equal(loaded.curves.length, 1);
    assert.equal(loaded.curves[0].points.length, 5);
    assert.equal(loaded.examples.length, 1);
    assert.equal(loaded.examples[0].pairs.length, 2);
    assert.ok(loaded.examples[0].features?.endsWith('features.safetensors'));
    assert.deepEqual(loaded.analyses.map((a) => a.label).sort(), ['after', 'before']);
  });
  it('takes a run folder as a job of its own, but not twice when a result describes it', () => {
    const alone = loadInputs([s.defenseRun]);
    assert.equal(alone.jobs.length, 1);
    const job = alone.jobs[0];
    assert.equal(job.kind, 'defense');
    assert.equal(job.defense, 'gnft');
    assert.equal(job.before?.asr, 0.98);
    assert.equal(job.metrics?.asr, 0.04);
    assert.equal(job.dataName, 'small-scd10', 'the data comes from the parent attack run');
    assert.equal(alone.examples.length, 1, "the parent attack run's examples");
    const both = loadInputs([s.results, s.defenseRun, s.attackRun]);
    assert.equal(both.jobs.length, loaded.jobs.length);
  });
  it('reads an attack run folder as an attack job with its clean model', () => {
    const { jobs } = loadInputs([s.attackRun]);
    assert.equal(jobs.length, 1);
    assert.equal(jobs[0].kind, 'attack');
    assert.equal(jobs[0].clean?.ca, 0.96);
    assert.equal(jobs[0].epochs, 12);
  });
  it('fails on a path that does not exist, naming it', () => {
    assert.throws(
      () => loadInputs([path.join(root, 'nope')]),
      (e: Error) => e instanceof MissingInputError && e.message.includes('nope'),
    );
    assert.throws(() => loadInputs([s.results], { analysis: [path.join(root, 'no-analysis')] }), /--analysis .*no-analysis/);
  });
  it('skips a run folder whose metrics.json is broken', () => {
    const broken = path.join(root, 'broken-run');
    mkdirSync(broken);
    writeFileSync(path.join(broken, 'metrics.json'), '{"kind": "attack"');
    const r = loadInputs([broken]);
    assert.equal(r.jobs.length, 0);
    assert.equal(r.skipped, 1);
  });
});
