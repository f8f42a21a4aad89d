// `kwshield grid run` end to end on the tiny synthetic set (about 3 minutes on 2 cores):
//  1. grids/tiny.yaml (synth, attack, FT, GN-FT) killed with SIGKILL as soon as its first result file
//     appears, then run again: finished jobs are not redone (their files keep content and mtime), the
//     rest finish, nothing is lost.
//  2. a two-row grid (BadNets and JingleBack sharing one clean model, FT, GN-FT, and an FP setting that
//     fails at run time) as one run with --workers 2 and as two shards running at once on a shared
//     results and work folder: the same results, job for job; the failing jobs recorded as failed while
//     the others finish; the clean model trained once per work folder under its lock.
//  3. grid collect and results over those results.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { kwshieldBin as bin, cliRunner, repoRoot as root } from './helpers/cli-run.ts';

const work = mkdtempSync(path.join(tmpdir(), 'kws-grid-'));
const env = { ...process.env, KWSHIELD_CACHE: path.join(work, 'cache'), KWSHIELD_GRID_POLL_MS: '500' };

const run = cliRunner(env);

function runAsync(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env, cwd: root });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const resultFiles = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => /^[0-9a-f]{16}\.json$/.test(f)) : []).sort();
const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8'));

/** What must not depend on how the work was split: status, error, metrics, and the job itself (without its data path). */
function essence(file: string) {
  const r = readJson(file);
  const { data: _data, ...job } = r.job;
  return { id: r.id, status: r.status, error: r.error, job, metrics: r.metrics, before: r.before, der: r.der, clean: r.clean };
}

let data = '';

describe('kwshield grid run', () => {
  after(() => rmSync(work, { recursive: true, force: true }));

  it('a run killed with SIGKILL after its first result continues where it stopped, redoing nothing', async () => {
    const results = path.join(work, 'tiny-results');
    const child = spawn(process.execPath, [bin, 'grid', 'run', 'grids/tiny.yaml', '--results', results], { env, cwd: root, detached: true, stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    const deadline = Date.now() + 150_000;
    while (resultFiles(results).length === 0) {
      assert.ok(Date.now() < deadline, 'a first result within 150 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    // The whole process group, workers included: as a machine going down.
    process.kill(-(child.pid as number), 'SIGKILL');
    await exited;
    const first = resultFiles(results);
    assert.equal(first.length, 1);
    const firstFile = path.join(results, first[0]);
    const before = { text: readFileSync(firstFile, 'utf8'), mtime: statSync(firstFile).mtimeMs };
    assert.equal(JSON.parse(before.text).job.kind, 'attack');
    assert.equal(JSON.parse(before.text).status, 'ok');

    const again = run(['grid', 'run', 'grids/tiny.yaml', '--results', results, '--workers', '2', '--json']);
    assert.equal(again.code, 0, again.stderr);
    const summary = again.json();
    assert.equal(summary.jobs, 4);
    assert.equal(summary.skipped, 2, 'the synth and attack jobs were done');
    assert.equal(summary.ok, 2, 'the two defense jobs ran');
    assert.doesNotMatch(again.stderr, new RegExp(`\\[start [^\\]]*\\].*\\(${first[0].slice(0, 16)}\\)`), 'the finished job did not start again');
    assert.match(again.stderr, /\[ok \d\/4\] defense .* eta /);
    assert.deepEqual({ text: readFileSync(firstFile, 'utf8'), mtime: statSync(firstFile).mtimeMs }, before, 'the finished result is untouched');
    const all = resultFiles(results);
    assert.equal(all.length, 3);
    for (const f of all) {
      const r = readJson(path.join(results, f));
      assert.equal(r.status, 'ok', f);
      assert.equal(r.format, 'kwshield-result');
      assert.equal(r.version, 1);
      assert.equal(`${r.id}.json`, f);
      for (const k of ['ca', 'asr', 'ra']) assert.equal(typeof r.metrics[k], 'number');
      assert.ok(path.isAbsolute(r.job.data) && existsSync(r.job.data));
      assert.equal(r.job.frontEnd, 'mfcc-16k');
      if (r.job.kind === 'defense') {
        assert.equal(typeof r.der, 'number');
        assert.ok(r.before && existsSync(r.runs.model) && existsSync(r.runs.attack));
      } else assert.ok(r.clean);
      assert.equal(r.machine.cpus > 0 && typeof r.machine.hostname, 'string');
      assert.equal(r.versions.kwshield, JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version);
    }
    assert.deepEqual(readdirSync(path.join(results, 'work', 'locks')), [], 'every lock released');
    // A third run has nothing to do.
    const third = run(['grid', 'run', 'grids/tiny.yaml', '--results', results, '--json']);
    assert.equal(third.code, 0, third.stderr);
    assert.deepEqual([third.json().skipped, third.json().ok], [4, 0]);
    data = readJson(firstFile).job.data;
  });

  it('two shards at once give the same results as one run with 2 workers; a failing job is recorded and the others finish', async () => {
    assert.ok(data, 'the data of the first test');
    const grid = path.join(work, 'two-rows.yaml');
    writeFileSync(
      grid,
      [
        'name: two-rows',
        `data: [{ name: tiny-scd10, path: ${JSON.stringify(data)} }]`,
        'models: [resnet]',
        'attacks: [badnets, jingleback]',
        'epochs: 1',
        'defenses:',
        '  - { defense: ft, recipe: paper, options: { epochs: 2 } }',
        '  - { defense: gnft, recipe: default, options: { epochs: 2, holdout: 0 } }',
        '  - { defense: fp, recipe: default, options: { holdout: 0 } } # fails at run time: FP needs a hold-out',
        'cleanRatios: [0.2]',
        'seeds: [0]',
        '',
      ].join('\n'),
    );
    const one = path.join(work, 'one');
    const sharded = path.join(work, 'sharded');
    mkdirSync(sharded);
    const started = Date.now();
    const a = run(['grid', 'run', grid, '--results', one, '--workers', '2', '--json']);
    const oneSeconds = (Date.now() - started) / 1000;
    assert.equal(a.code, 1, 'failed jobs make the exit code 1');
    assert.match(a.stderr, /2 of 8 jobs failed/);
    const sa = a.json();
    assert.equal(sa.ok, 6);
    assert.equal(sa.failed.length, 2);
    for (const f of sa.failed) assert.match(f.error, /fp judges pruning on a clean hold-out/);

    const shardStart = Date.now();
    const [s0, s1] = await Promise.all([0, 1].map((i) => runAsync(['grid', 'run', grid, '--results', sharded, '--shard', `${i}/2`, '--json'])));
    const shardSeconds = (Date.now() - shardStart) / 1000;
    for (const s of [s0, s1]) {
      assert.equal(s.code, 1, s.stderr);
      const summary = JSON.parse(s.stdout.trim().split('\n').pop() as string);
      assert.equal(summary.jobs, 4, 'one row each');
      assert.equal(summary.ok, 3);
      assert.equal(summary.failed.length, 1);
    }
    // One clean model for both attacks in each work folder, trained once.
    assert.equal(readdirSync(path.join(one, 'work', 'runs', 'clean')).length, 1);
    assert.equal(readdirSync(path.join(sharded, 'work', 'runs', 'clean')).length, 1);
    assert.match(
      s0.stderr +
        s1.stderr +
        readdirSync(path.join(sharded, 'work', 'logs'))
          .map((f) => readFileSync(path.join(sharded, 'work', 'logs', f), 'utf8'))
          .join(''),
      /training the clean resnet/,
    );

    const filesA = resultFiles(one);
    assert.equal(filesA.length, 8);
    assert.deepEqual(resultFiles(sharded), filesA, 'the same jobs');
    for (const f of filesA) assert.deepEqual(essence(path.join(sharded, f)), essence(path.join(one, f)), `${f}: the same result`);
    const failed = filesA.map((f) => readJson(path.join(one, f))).filter((r) => r.status === 'failed');
    assert.deepEqual(
      failed.map((r) => r.job.defense),
      ['fp', 'fp'],
    );
    assert.equal(failed[0].metrics, undefined);
    process.stderr.write(`# tiny two-row grid: 1 run x 2 workers ${oneSeconds.toFixed(0)} s, 2 shards x 1 worker at once ${shardSeconds.toFixed(0)} s\n`);

    // A second run retries only the failed jobs.
    const retry = run(['grid', 'run', grid, '--results', one, '--workers', '2', '--json']);
    assert.equal(retry.code, 1);
    assert.deepEqual([retry.json().skipped, retry.json().ok, retry.json().failed.length], [6, 0, 2]);
  });

  it('grid collect indexes the results idempotently, and results shows the paper table', () => {
    const results = path.join(work, 'one');
    const db = path.join(work, 'results.sqlite');
    writeFileSync(path.join(results, 'ffffffffffffffff.json'), '{"format": "kwshield-result", ');
    const c1 = run(['grid', 'collect', results, '--db', db, '--json']);
    assert.equal(c1.code, 0, c1.stderr);
    const s1 = c1.json();
    assert.deepEqual([s1.added, s1.rows], [8, 8]);
    assert.deepEqual(
      s1.corrupt.map((c: { file: string }) => c.file),
      ['ffffffffffffffff.json'],
    );
    const c2 = run(['grid', 'collect', results, '--db', db, '--json']);
    assert.deepEqual([c2.json().added, c2.json().updated, c2.json().unchanged, c2.json().rows], [0, 0, 8, 8]);
    const table = run(['results', '--db', db, '--format', 'json']);
    assert.equal(table.code, 0, table.stderr);
    const t = table.json();
    assert.deepEqual(t.groups, ['No Defense', 'ft/paper epochs=2', 'gnft/default epochs=2 holdout=0']);
    assert.deepEqual(
      t.rows.map((r: { key: { attack: string } }) => r.key.attack),
      ['badnets', 'jingleback', 'Average'],
    );
    const text = run(['results', '--db', db, '--where', 'attack=jingleback']);
    assert.match(text.stdout, /resnet\s+jingleback/);
    assert.doesNotMatch(text.stdout, /badnets/);
  });
});
