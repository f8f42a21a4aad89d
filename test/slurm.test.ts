// examples/slurm/ on a real single-node Slurm (Debian's slurmctld, slurmd and munge, started by
// scripts/slurm-local.sh with a slurm.conf generated for this machine): a two-row tiny grid submitted with
// examples/slurm/submit.sh as a job array of two tasks, without $USER in the environment. The task of row 1
// is cancelled with scancel as soon as its attack result lands; the array is resubmitted, and only the
// unfinished jobs run again (finished result files keep their content and mtime). The results then equal a
// local `grid run` of the same grid, job for job. About 3 minutes on 2 cores.
// Needs root and the packages of `bash scripts/setup-system.sh --slurm`; skipped without them, except
// under CI (CI=true), where .ci/run installs them and a skip would hide a broken set-up.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'kwshield');

function slurmMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to start slurmctld and slurmd';
  for (const tool of ['/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/sbin/munged', '/usr/bin/sbatch']) {
    if (!existsSync(tool)) return `${tool} missing (bash scripts/setup-system.sh --slurm)`;
  }
  return undefined;
}
const missing = slurmMissing();
if (missing && process.env.CI === 'true') throw new Error(`Slurm test cannot run under CI: ${missing}`);

const work = mkdtempSync(path.join(tmpdir(), 'kws-slurm-'));
const state = path.join(work, 'slurm');
// The environment of every command here: no $USER, as in a batch environment that does not set it.
const { USER: _user, ...baseEnv } = process.env;
const env: NodeJS.ProcessEnv = { ...baseEnv, KWSHIELD_CACHE: path.join(work, 'cache'), KWSHIELD_GRID_POLL_MS: '500' };

function sh(command: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(command, args, { cwd: root, encoding: 'utf8', env: { ...env, ...extraEnv } });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const resultFiles = (dir: string) =>
  existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => /^[0-9a-f]{16}\.json$/.test(f))
        .sort()
    : [];
const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8'));
/** What must not depend on where a job ran: status, metrics and the job itself (without its data path). */
function essence(file: string) {
  const r = readJson(file);
  const { data: _data, ...job } = r.job;
  return { id: r.id, status: r.status, error: r.error, job, metrics: r.metrics, before: r.before, der: r.der, clean: r.clean };
}

/** Polls squeue until the job (all its array tasks) has left the queue. */
async function waitForJob(jobId: string, timeoutMs = 15 * 60_000) {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    const r = spawnSync('squeue', ['-h', '-j', jobId, '-o', '%i %T'], { encoding: 'utf8', env });
    if (r.status === 0 && r.stdout.trim() === '') return;
    await sleep(1000);
  }
  throw new Error(`Slurm job ${jobId} still queued after ${timeoutMs / 1000} s`);
}

describe('examples/slurm on a single-node Slurm', { skip: missing }, () => {
  const grid = path.join(work, 'tiny2.yaml');
  const shared = path.join(work, 'shared');
  const results = path.join(shared, 'results', 'tiny2');

  before(() => {
    // grids/tiny.yaml with two attack seeds: two rows, one per array task.
    const tiny = readFileSync(path.join(root, 'grids', 'tiny.yaml'), 'utf8');
    writeFileSync(grid, tiny.replace(/^name: tiny$/m, 'name: tiny2').replace(/^attackSeeds: \[0\]$/m, 'attackSeeds: [0, 1]'));
    const exported = sh('bash', ['scripts/slurm-local.sh', 'start', state]);
    const conf = /export SLURM_CONF=(\S+)/.exec(exported)?.[1];
    assert.ok(conf, `slurm-local.sh printed no SLURM_CONF: ${exported}`);
    env.SLURM_CONF = conf;
  });
  after(() => {
    spawnSync('bash', ['scripts/slurm-local.sh', 'stop', state], { cwd: root, env });
    rmSync(work, { recursive: true, force: true });
  });

  it('runs the grid as a job array, resumes after scancel of a task, and matches a local run', async () => {
    const manifest = JSON.parse(sh(process.execPath, [bin, 'grid', 'expand', grid, '--json']).trim().split('\n').pop() as string);
    assert.equal(manifest.counts.rows, 2);
    // A result file for every attack and defense job (a synth job leaves its data folder, not a result).
    const allIds = manifest.jobs
      .filter((j: { kind: string }) => j.kind !== 'synth')
      .map((j: { id: string }) => j.id)
      .sort();
    const row1Attack = manifest.rows[1].attack as string;

    const submit = () => sh('bash', ['examples/slurm/submit.sh', grid], { SHARED: shared }).trim().split('\n').pop() as string;
    const first = submit();
    assert.match(first, /^\d+$/, 'submit.sh prints the array job id');
    // The array asks for the grid's threads (1) per task, not a fixed count: both tasks fit on 2 cores.
    const cpus = spawnSync('squeue', ['-h', '-j', first, '-o', '%C'], { encoding: 'utf8', env }).stdout.trim().split('\n');
    assert.ok(
      cpus.every((c) => c === '' || c === '1'),
      `CPUs per task: ${cpus.join(',')}`,
    );

    // Cancel row 1's task once its attack has finished, leaving its defense jobs undone.
    const attackResult = path.join(results, `${row1Attack}.json`);
    const deadline = Date.now() + 10 * 60_000;
    while (!existsSync(attackResult) && Date.now() < deadline) await sleep(500);
    assert.ok(existsSync(attackResult), 'row 1 attack result never appeared');
    sh('scancel', [`${first}_1`]);
    await waitForJob(first);

    const afterCancel = resultFiles(results);
    assert.ok(afterCancel.length < allIds.length, `scancel left nothing undone (${afterCancel.length} of ${allIds.length})`);
    const stamps = new Map(afterCancel.map((f) => [f, { mtime: statSync(path.join(results, f)).mtimeMs, text: readFileSync(path.join(results, f), 'utf8') }]));

    const second = submit();
    await waitForJob(second);
    assert.deepEqual(
      resultFiles(results),
      allIds.map((id: string) => `${id}.json`),
    );
    for (const [file, stamp] of stamps) {
      assert.equal(statSync(path.join(results, file)).mtimeMs, stamp.mtime, `${file} was rewritten by the resubmission`);
      assert.equal(readFileSync(path.join(results, file), 'utf8'), stamp.text);
    }
    for (const f of resultFiles(results)) assert.equal(readJson(path.join(results, f)).status, 'ok', f);
    // Logs go under the results folder, one per task and submission, not into the checkout.
    const logs = readdirSync(path.join(results, 'slurm-logs'));
    assert.ok(logs.includes(`${first}_0.out`) && logs.includes(`${second}_1.out`), logs.join(','));

    const local = path.join(work, 'local');
    sh(process.execPath, [bin, 'grid', 'run', grid, '--results', local, '--workers', '2']);
    assert.deepEqual(resultFiles(local), resultFiles(results));
    for (const f of resultFiles(local)) assert.deepEqual(essence(path.join(results, f)), essence(path.join(local, f)), f);
  });
});
