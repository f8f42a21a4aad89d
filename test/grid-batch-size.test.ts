// A grid's `batchSize` reaches the attack and defense jobs (and the clean model's identity), leaves the ids of
// grids without it unchanged, and survives the round trip through a result file's job record.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseGrid } from '../src/experiments/grid/grid-file.ts';
import { expandGrid, jobId } from '../src/experiments/grid/manifest.ts';
import { cleanKey } from '../src/experiments/grid/paths.ts';
import { configOfResult, resultJob } from '../src/experiments/grid/result.ts';

const text = (extra: string) =>
  [
    'name: b',
    'data: [{ name: d, synth: { preset: tiny, words: scd10, seed: 1 } }]',
    'models: [resnet]',
    'attacks: [badnets]',
    'epochs: 2',
    extra,
    'defenses: [{ defense: ft, recipe: paper }]',
  ].join('\n');

describe('grid batchSize', () => {
  const file = path.resolve('b.yaml');
  const without = expandGrid(parseGrid(text(''), file));
  const withSize = expandGrid(parseGrid(text('batchSize: 32'), file));

  it('reaches every training job and changes their ids and the clean model', () => {
    const jobs = withSize.jobs.filter((j) => j.kind !== 'synth');
    assert.ok(jobs.length >= 2);
    for (const j of jobs) assert.equal((j.config as { batchSize?: number }).batchSize, 32, j.label);
    const attackWith = jobs.find((j) => j.kind === 'attack');
    const attackWithout = without.jobs.find((j) => j.kind === 'attack');
    assert.notEqual(attackWith?.id, attackWithout?.id);
    assert.notEqual(cleanKey(attackWith?.config as never), cleanKey(attackWithout?.config as never));
  });

  it('leaves grids without it as they were (no batchSize key in their jobs)', () => {
    for (const j of without.jobs) assert.ok(!('batchSize' in (j.config as object)), j.label);
  });

  it('round-trips through a result job record to the same id', () => {
    for (const j of withSize.jobs.filter((x) => x.kind !== 'synth')) {
      const record = resultJob(j.config as never, '/tmp/data');
      assert.equal(jobId(configOfResult(record)), j.id, j.label);
    }
  });

  it('refuses a batch size that is not a whole number above 0', () => {
    assert.throws(() => parseGrid(text('batchSize: 0'), file), /batchSize.*whole number above 0/);
  });
});
