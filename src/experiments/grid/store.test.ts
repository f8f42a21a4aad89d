// The results index and its tables, on hand-made result files: collect is idempotent (upsert by id,
// nothing added twice), reports and skips corrupt files, and `results` filters and lays out the paper
// table (mean ± std over seeds, n, No Defense from the attack jobs, an Average row per model).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { finiteMeanStd } from '../aggregate.ts';
import type { AttackConfig, DefenseConfig } from './manifest.ts';
import { jobId } from './manifest.ts';
import { type JobResult, makeResult, resultJob, writeResult } from './result.ts';
import { collectResults, parseFilters, queryResults, StoreError } from './store.ts';
import { paperCsv, paperTable, paperText, rowsText } from './store-table.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'kws-store-'));
const results = path.join(dir, 'results');
const db = path.join(dir, 'results.sqlite');

function attackConfig(model: string, attack: string, attackSeed = 0): AttackConfig {
  return {
    kind: 'attack',
    dataName: 'small-scd10',
    words: 'scd10',
    model,
    frontEnd: 'mfcc-16k',
    attack,
    attackSeed,
    poisonRatio: 0.1,
    target: 'up',
    seed: attackSeed,
  };
}

function attackResult(model: string, attack: string, asr: number, ca: number): JobResult {
  const c = attackConfig(model, attack);
  return makeResult(jobId(c), resultJob(c, '/data/small-scd10'), {
    status: 'ok',
    metrics: { ca, asr, ra: 1 - asr },
    clean: { ca: ca + 0.01, asr: 0.01, ra: 0.9 },
    runs: { model: '/w/a', attack: '/w/a' },
    seconds: 10,
  });
}

function defenseResult(
  model: string,
  attack: string,
  defense: string,
  recipe: 'paper' | 'default',
  seed: number,
  asr: number,
  ca: number,
  cleanRatio = 0.05,
): JobResult {
  const { kind: _k, ...a } = attackConfig(model, attack);
  const c: DefenseConfig = { ...a, kind: 'defense', defense, recipe, cleanRatio, seed };
  return makeResult(jobId(c), resultJob(c, '/data/small-scd10'), {
    status: 'ok',
    metrics: { ca, asr, ra: 0.5 },
    before: { ca: 0.95, asr: 0.99, ra: 0.01 },
    der: 0.9,
    runs: { model: '/w/d', attack: '/w/a' },
    seconds: 5,
  });
}

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [path.join(root, 'bin', 'kwshield'), ...args], { encoding: 'utf8', cwd: root });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('results store', () => {
  before(() => {
    mkdirSync(results, { recursive: true });
    writeResult(results, attackResult('resnet', 'badnets', 0.99, 0.95));
    writeResult(results, attackResult('resnet', 'ultrasonic', 1.0, 0.93));
    writeResult(results, attackResult('lstm', 'badnets', 0.98, 0.94));
    // GN-FT over three seeds: ASR 2, 4, 6 % -> 4.0 ± 2.0; CA 90, 91, 92 -> 91.0 ± 1.0
    for (const [seed, asr, ca] of [
      [0, 0.02, 0.9],
      [1, 0.04, 0.91],
      [2, 0.06, 0.92],
    ])
      writeResult(results, defenseResult('resnet', 'badnets', 'gnft', 'paper', seed, asr, ca));
    writeResult(results, defenseResult('resnet', 'ultrasonic', 'gnft', 'paper', 0, 0.01, 0.9));
    writeResult(results, defenseResult('resnet', 'badnets', 'fp', 'default', 0, 0.25, 0.45));
    writeResult(results, defenseResult('lstm', 'badnets', 'gnft', 'paper', 0, 0.04, 0.85));
    const failed = defenseResult('lstm', 'badnets', 'fp', 'default', 0, 0, 0);
    writeResult(results, { ...failed, status: 'failed', error: 'it broke', metrics: undefined, before: undefined, der: undefined });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('collect indexes every result once, however often it runs', () => {
    const first = collectResults(results, db);
    assert.equal(first.files, 10);
    assert.equal(first.added, 10);
    assert.equal(first.rows, 10);
    const again = collectResults(results, db);
    assert.deepEqual([again.added, again.updated, again.unchanged, again.rows], [0, 0, 10, 10]);
    // A changed result (a job run again) is updated in place.
    const rerun = defenseResult('lstm', 'badnets', 'gnft', 'paper', 0, 0.03, 0.86);
    writeResult(results, rerun);
    const third = collectResults(results, db);
    assert.deepEqual([third.added, third.updated, third.rows], [0, 1, 10]);
    assert.equal(queryResults(db, parseFilters([`id=${rerun.id}`]))[0].asr, 0.03);
  });

  it('collect reports and skips corrupt files and keeps going', () => {
    writeFileSync(path.join(results, '0123456789abcdef.json'), '{ "format": "kwshield-result", "vers');
    writeFileSync(path.join(results, 'fedcba9876543210.json'), JSON.stringify({ format: 'something-else' }));
    const r = attackResult('kwt', 'pbsm', 0.9, 0.9);
    writeFileSync(path.join(results, 'aaaaaaaaaaaaaaaa.json'), JSON.stringify(r)); // the name does not match its id
    writeFileSync(path.join(results, '.tmp-file.json'), 'half'); // a temporary file of a writer: not a result
    const s = collectResults(results, db);
    assert.deepEqual(
      s.corrupt.map((c) => c.file),
      ['0123456789abcdef.json', 'aaaaaaaaaaaaaaaa.json', 'fedcba9876543210.json'],
    );
    assert.match(s.corrupt[0].problem, /not valid JSON/);
    assert.match(s.corrupt[1].problem, /does not match its id/);
    assert.match(s.corrupt[2].problem, /format/);
    assert.equal(s.rows, 10, 'nothing of the corrupt files entered the index');
  });

  it('filters by columns (lists, numbers) and refuses unknown columns', () => {
    assert.equal(queryResults(db, parseFilters(['model=resnet'])).length, 7);
    assert.equal(queryResults(db, parseFilters(['model=resnet', 'defense=gnft'])).length, 4);
    assert.equal(queryResults(db, parseFilters(['attack=badnets,ultrasonic', 'kind=attack'])).length, 3);
    assert.equal(queryResults(db, parseFilters(['cleanRatio=0.05', 'seed=2'])).length, 1);
    assert.equal(queryResults(db, parseFilters(['status=failed']))[0].error, 'it broke');
    assert.equal(queryResults(db, parseFilters(['setting=gnft/paper'])).length, 5);
    assert.throws(
      () => parseFilters(['modle=resnet']),
      (e: Error) => e instanceof StoreError && /unknown column 'modle'; the columns are id, status/.test(e.message),
    );
    assert.throws(() => parseFilters(['model']), /not key=value/);
    assert.throws(() => queryResults(path.join(dir, 'none.sqlite')), /no database at .*none\.sqlite; build it with kwshield grid collect/);
  });

  it("lays out the paper's table: mean ± std over seeds, n, No Defense, Average rows", () => {
    const t = paperTable(queryResults(db));
    assert.deepEqual(t.keyColumns, ['model', 'attack']);
    assert.deepEqual(t.groups, ['No Defense', 'fp/default', 'gnft/paper']);
    const rn = t.rows.find((r) => r.key.model === 'resnet' && r.key.attack === 'badnets');
    assert.ok(rn);
    assert.equal(rn.cells['gnft/paper'].n, 3);
    assert.ok(Math.abs(rn.cells['gnft/paper'].asr.mean - 0.04) < 1e-12);
    assert.ok(Math.abs(rn.cells['gnft/paper'].asr.std - 0.02) < 1e-12);
    assert.ok(Math.abs(rn.cells['gnft/paper'].ca.std - 0.01) < 1e-12);
    assert.equal(rn.cells['No Defense'].asr.mean, 0.99);
    const average = t.rows.find((r) => r.average && r.key.model === 'resnet');
    assert.ok(average, 'an Average row for resnet (two attacks)');
    assert.ok(Math.abs(average.cells['No Defense'].asr.mean - (0.99 + 1.0) / 2) < 1e-12);
    assert.ok(Math.abs(average.cells['gnft/paper'].asr.mean - (0.04 + 0.01) / 2) < 1e-12);
    assert.equal(
      t.rows.find((r) => r.average && r.key.model === 'lstm'),
      undefined,
      'no Average for a single attack',
    );
    const rowsOut = rowsText(queryResults(db, parseFilters(['model=lstm'])));
    assert.match(rowsOut, /failed\s+defense\s+small-scd10\s+lstm\s+badnets/);
    assert.match(rowsOut, /3 results/);
    const text = paperText(t);
    assert.match(text, /No Defense\s+fp\/default\s+gnft\/paper/);
    assert.match(text, /resnet\s+badnets\s+99\.0\s+95\.0\s+1\s+25\.0\s+45\.0\s+1\s+4\.0 ± 2\.0\s+91\.0 ± 1\.0\s+3/);
    const csv = paperCsv(t).split('\n');
    assert.equal(csv[0].split(',').length, 2 + 3 * 5);
    assert.equal(finiteMeanStd([0.5]).std, 0);
    // Several clean ratios: one column group per ratio.
    const ratios = paperTable([
      ...queryResults(db, parseFilters(['kind=attack'])),
      { ...queryResults(db, parseFilters(['setting=gnft/paper']))[0], cleanRatio: 0.1 },
      { ...queryResults(db, parseFilters(['setting=gnft/paper']))[1], cleanRatio: 0.02 },
    ]);
    assert.deepEqual(ratios.groups, ['No Defense', 'gnft/paper @0.02', 'gnft/paper @0.1']);
  });

  it('the CLI: grid collect and results, with clear errors', () => {
    const cdb = path.join(dir, 'cli.sqlite');
    // (The integration test test/grid-run.test.ts runs collect --json and results --where on real runs.)
    const c = cli(['grid', 'collect', results, '--db', cdb]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /13 result files: 10 added, 0 updated, 0 unchanged, 3 corrupt \(skipped\); 10 rows/);
    assert.match(c.stdout, /corrupt: 0123456789abcdef\.json: not valid JSON/);
    const csv = cli(['results', '--db', cdb, '--layout', 'rows', '--format', 'csv', '--where', 'kind=defense']);
    assert.equal(csv.code, 0, csv.stderr);
    const lines = csv.stdout.trim().split('\n');
    assert.equal(lines.length, 1 + 7);
    assert.ok(lines[0].startsWith('id,status,error,kind,'), lines[0]);
    const unknown = cli(['results', '--db', cdb, '--where', 'modle=resnet']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown column 'modle'/);
    const missing = cli(['results', '--db', path.join(dir, 'missing.sqlite')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no database at .*missing\.sqlite; build it with kwshield grid collect/);
    const notFolder = cli(['grid', 'collect', path.join(dir, 'nowhere'), '--db', cdb]);
    assert.equal(notFolder.code, 1);
    assert.match(notFolder.stderr, /nowhere is not a folder of results/);
  });
});
