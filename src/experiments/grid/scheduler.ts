// `kwshield grid run` as a library call: the jobs of one shard of a manifest, k at a time, each in its
// own child process (worker.ts) with KWSHIELD_THREADS from the grid, so numbers do not depend on how
// the work was split. A job whose result exists with status ok is skipped; a failed job is recorded as
// such and the others go on; a job another process holds (its lock) is waited for when this shard needs
// it, and left to that process otherwise. Killing the run at any moment loses nothing: results are
// written whole, and the next run resumes half-done jobs from their checkpoints.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describeHolder, isStale, readHolder, remoteStaleMs } from '../lock.ts';
import { type Manifest, type ManifestJob, type Shard, shardJobs } from './manifest.ts';
import { attackRunFolder, cleanKey, jobPaths } from './paths.ts';
import { type JobResult, makeResult, okResult, readResult, resultFile, resultJob, writeResult } from './result.ts';
import { WORKER_BUSY, type WorkerMessage, type WorkerTask } from './worker.ts';

export interface RunGridOptions {
  manifest: Manifest;
  results: string;
  work: string;
  shard?: Shard;
  /** jobs at a time (child processes) */
  workers?: number;
  /** how often to look again at jobs other processes hold */
  pollMs?: number;
  /** progress lines (default: stderr) */
  log?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

export interface RunGridSummary {
  grid: string;
  shard: string;
  results: string;
  work: string;
  workers: number;
  threads: number;
  /** jobs of this shard (synth jobs included) */
  jobs: number;
  /** already finished before this run */
  skipped: number;
  /** finished by this run */
  ok: number;
  failed: { id: string; label: string; error: string }[];
  /** finished meanwhile by another process */
  doneElsewhere: number;
  seconds: number;
}

type State = 'pending' | 'running' | 'ok' | 'failed';

interface Entry {
  job: ManifestJob;
  state: State;
  /** not before this time (ms): its lock was held elsewhere */
  notBefore: number;
  error?: string;
  startedAt?: number;
  waitingTold?: boolean;
}

// From the sources (a checkout) the worker is TypeScript and runs through tsx; from the compiled package
// (dist/) it is plain JavaScript beside this file.
const compiled = import.meta.url.endsWith('.js');
const workerFile = fileURLToPath(new URL(compiled ? './worker.js' : './worker.ts', import.meta.url));
const workerFlags = compiled ? [] : ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href];

export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 90) return `${s.toFixed(0)}s`;
  return s < 5400 ? `${(s / 60).toFixed(1)}m` : `${(s / 3600).toFixed(1)}h`;
}

const pct = (x: number | null | undefined) => (typeof x === 'number' && Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : 'n/a');

/** A shard being run: its jobs by id, the workers running now, and what the summary will say. */
interface ShardRun {
  manifest: Manifest;
  results: string;
  work: string;
  workers: number;
  pollMs: number;
  env?: NodeJS.ProcessEnv;
  say: (line: string) => void;
  entries: Map<string, Entry>;
  running: Map<string, ChildProcess>;
  summary: RunGridSummary;
  /** seconds of the jobs this run finished, by kind (for the ETA) */
  seconds: Map<string, number[]>;
  /** resolves the main loop's wait when a worker exits */
  wake: (() => void) | null;
}

/** Runs the shard's jobs; resolves when each is finished, failed, or held by a process this shard does not wait for. */
export async function runGrid(o: RunGridOptions): Promise<RunGridSummary> {
  const started = Date.now();
  const run = openShard(o);
  for (;;) {
    while (run.running.size < run.workers) {
      const next = nextJob(run);
      if (!next) break;
      startJob(run, next);
    }
    const pending = [...run.entries.values()].filter((e) => e.state === 'pending');
    if (run.running.size === 0 && pending.length === 0) break;
    if (run.running.size === 0) {
      // Only jobs held elsewhere (or waiting for them) are left: look again later.
      const soonest = Math.min(...pending.map((e) => e.notBefore));
      await new Promise<void>((resolve) => setTimeout(resolve, Math.max(50, Math.min(run.pollMs, soonest - Date.now()))));
      continue;
    }
    await new Promise<void>((resolve) => {
      run.wake = resolve;
      setTimeout(resolve, run.pollMs);
    });
  }
  const { summary } = run;
  summary.seconds = (Date.now() - started) / 1000;
  run.say(
    `grid ${run.manifest.grid.name}, shard ${summary.shard}: ${summary.ok} ok, ${summary.failed.length} failed, ${summary.skipped} skipped (done before), ${summary.doneElsewhere} done elsewhere, in ${formatDuration(summary.seconds)}`,
  );
  return summary;
}

/** The shard's jobs, those already finished marked so; the folders made; the opening line said. */
function openShard(o: RunGridOptions): ShardRun {
  const manifest = o.manifest;
  const shard = o.shard ?? { index: 0, count: 1 };
  const workers = Math.max(1, Math.floor(o.workers ?? 1));
  const results = path.resolve(o.results);
  const work = path.resolve(o.work);
  mkdirSync(results, { recursive: true });
  for (const d of ['logs', 'locks', 'runs']) mkdirSync(path.join(work, d), { recursive: true });
  const jobs = shardJobs(manifest, shard);
  const run: ShardRun = {
    manifest,
    results,
    work,
    workers,
    pollMs: o.pollMs ?? Number(o.env?.KWSHIELD_GRID_POLL_MS ?? process.env.KWSHIELD_GRID_POLL_MS ?? 5000),
    env: o.env,
    say: o.log ?? ((line: string) => process.stderr.write(`${line}\n`)),
    entries: new Map<string, Entry>(jobs.map((job) => [job.id, { job, state: 'pending', notBefore: 0 }])),
    running: new Map(),
    summary: {
      grid: manifest.grid.name,
      shard: `${shard.index}/${shard.count}`,
      results,
      work,
      workers,
      threads: manifest.threads,
      jobs: jobs.length,
      skipped: 0,
      ok: 0,
      failed: [],
      doneElsewhere: 0,
      seconds: 0,
    },
    seconds: new Map(),
    wake: null,
  };
  for (const e of run.entries.values()) {
    if (isDone(run, e.job)) {
      e.state = 'ok';
      run.summary.skipped++;
    }
  }
  const toRun = [...run.entries.values()].filter((e) => e.state === 'pending').length;
  run.say(
    `grid ${manifest.grid.name}, shard ${run.summary.shard}: ${jobs.length} jobs, ${run.summary.skipped} already done, ${toRun} to run with ${workers} worker${workers > 1 ? 's' : ''} (${manifest.threads} thread${manifest.threads > 1 ? 's' : ''} each); results in ${results}, work in ${work}`,
  );
  return run;
}

const pathsOf = (run: ShardRun, job: ManifestJob) => jobPaths(run.manifest, run.work, job);

function isDone(run: ShardRun, job: ManifestJob): boolean {
  return job.kind === 'synth' ? existsSync(path.join(pathsOf(run, job).out, 'synth.json')) : okResult(run.results, job.id) !== null;
}

const finishedCount = (run: ShardRun) => [...run.entries.values()].filter((e) => e.state === 'ok' || e.state === 'failed').length;

/** Time left: the mean time of each kind of job finished by this run, over the workers. */
function eta(run: ShardRun): string {
  const meanOf = (kind: string) => {
    const own = run.seconds.get(kind) ?? [];
    const all = [...run.seconds.values()].flat();
    const xs = own.length ? own : all;
    return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN;
  };
  let left = 0;
  for (const e of run.entries.values()) {
    if (e.state === 'pending') left += meanOf(e.job.kind);
    else if (e.state === 'running') left += Math.max(0, meanOf(e.job.kind) - (Date.now() - (e.startedAt ?? Date.now())) / 1000);
  }
  return formatDuration(left / run.workers);
}

/**
 * The next job to start: pending, its time come, its dependencies finished. On the way, jobs whose
 * dependency failed are recorded as failed and jobs finished by another process as done.
 */
function nextJob(run: ShardRun): Entry | null {
  const now = Date.now();
  let fallback: Entry | null = null;
  for (const e of run.entries.values()) {
    if (e.state !== 'pending' || e.notBefore > now) continue;
    const deps = e.job.dependsOn.map((id) => run.entries.get(id)).filter((d): d is Entry => d !== undefined);
    const failed = deps.find((d) => d.state === 'failed');
    if (failed) {
      failForDependency(run, e, failed);
      continue;
    }
    if (!deps.every((d) => d.state === 'ok')) continue;
    if (isDone(run, e.job)) {
      e.state = 'ok';
      run.summary.doneElsewhere++;
      run.say(`[done ${finishedCount(run)}/${run.summary.jobs}] ${e.job.label} (${e.job.id}): finished by another process`);
      continue;
    }
    if (heldElsewhere(run, e)) {
      e.notBefore = now + run.pollMs;
      continue;
    }
    // Two attack jobs that need the same clean model: the second would only wait for the first's.
    if (cleanInTraining(run, e)) {
      fallback ??= e;
      continue;
    }
    return e;
  }
  return fallback;
}

/** A dependency failed: this job cannot run; record it as failed so the results say why. */
function failForDependency(run: ShardRun, e: Entry, dep: Entry): void {
  const error = `not run: the ${dep.job.kind} job ${dep.job.id} it needs failed: ${dep.error ?? 'see its result'}`;
  e.state = 'failed';
  e.error = error;
  if (e.job.config.kind !== 'synth') {
    const p = pathsOf(run, e.job);
    const result = makeResult(e.job.id, resultJob(e.job.config, p.data ?? ''), { status: 'failed', error, runs: {}, seconds: 0 });
    if (!okResult(run.results, e.job.id)) writeResult(run.results, result);
  }
  run.summary.failed.push({ id: e.job.id, label: e.job.label, error });
  run.say(`[failed ${finishedCount(run)}/${run.summary.jobs}] ${e.job.label} (${e.job.id}): ${error}`);
}

/** Whether another process holds the job's lock (then it is not started here now). */
function heldElsewhere(run: ShardRun, e: Entry): boolean {
  const file = pathsOf(run, e.job).lock;
  if (!existsSync(file)) return false;
  const h = readHolder(file);
  // Unreadable, or stale (a dead process on this host, or no heartbeat from another host for long):
  // the worker decides (it takes stale locks over).
  if (!h || isStale(file, h)) return false;
  if (!e.waitingTold) {
    run.say(`  ${e.job.label} (${e.job.id}) is being run by ${describeHolder(h)}; waiting for it (if that process is gone, delete ${file})`);
    if (h.hostname !== os.hostname()) run.say(`  (a lock of another host counts as stale after ${remoteStaleMs() / 60_000} minutes without a heartbeat)`);
    e.waitingTold = true;
  }
  return true;
}

/** Whether a running attack job is training the clean model this attack job needs too. */
function cleanInTraining(run: ShardRun, e: Entry): boolean {
  const c = e.job.config;
  if (c.kind !== 'attack') return false;
  const clean = pathsOf(run, e.job).clean;
  if (!clean || existsSync(path.join(clean.dir, 'model.json'))) return false;
  const key = cleanKey(c);
  return [...run.running.keys()].some((id) => {
    const other = run.entries.get(id)?.job.config;
    return other?.kind === 'attack' && cleanKey(other) === key;
  });
}

/** The attack run a defense job purifies: where its attack job's result says, else this work folder's. */
function attackRunOf(run: ShardRun, job: ManifestJob): string | undefined {
  const attackId = job.dependsOn[0];
  const r = okResult(run.results, attackId);
  if (r?.runs.attack && existsSync(path.join(r.runs.attack, 'metrics.json'))) return r.runs.attack;
  if (job.config.kind === 'synth') return undefined;
  return attackRunFolder(run.work, attackId, job.config);
}

/** Starts the job in a worker process (its output appended to the job's log). */
function startJob(run: ShardRun, e: Entry): void {
  const p = pathsOf(run, e.job);
  const task: WorkerTask = { job: e.job, paths: p, results: run.results, ...(e.job.kind === 'defense' ? { attackRun: attackRunOf(run, e.job) } : {}) };
  mkdirSync(path.dirname(p.log), { recursive: true });
  const fd = openSync(p.log, 'a');
  writeSync(fd, `\n=== ${new Date().toISOString()} ${e.job.label} (${e.job.id}), pid ${process.pid} ===\n`);
  const child = spawn(process.execPath, [...workerFlags, workerFile, JSON.stringify(task)], {
    stdio: ['ignore', fd, fd, 'ipc'],
    env: { ...process.env, ...run.env, KWSHIELD_THREADS: String(run.manifest.threads) },
  });
  closeSync(fd);
  e.state = 'running';
  e.startedAt = Date.now();
  run.running.set(e.job.id, child);
  run.say(`[start ${finishedCount(run) + run.running.size}/${run.summary.jobs}] ${e.job.label} (${e.job.id})`);
  let message: WorkerMessage | undefined;
  child.on('message', (m) => {
    message = m as WorkerMessage;
  });
  child.on('exit', (code, signal) => {
    run.running.delete(e.job.id);
    jobExited(run, e, { code, signal, message });
    run.wake?.();
    run.wake = null;
  });
}

/** Records how a worker ended: busy (try later), ok, or failed (with a result file when the worker wrote none). */
function jobExited(run: ShardRun, e: Entry, exit: { code: number | null; signal: NodeJS.Signals | null; message?: WorkerMessage }): void {
  const { code, signal, message } = exit;
  const p = pathsOf(run, e.job);
  const total = run.summary.jobs;
  const secs = (Date.now() - (e.startedAt ?? Date.now())) / 1000;
  if (code === WORKER_BUSY || message?.status === 'busy') {
    e.state = 'pending';
    e.notBefore = Date.now() + run.pollMs;
    run.say(`  ${e.job.label} (${e.job.id}): ${message?.error ?? 'its lock is held elsewhere'}; trying again later`);
  } else if (message?.status === 'ok') {
    e.state = 'ok';
    run.summary.ok++;
    const r = message.result;
    (run.seconds.get(e.job.kind) ?? run.seconds.set(e.job.kind, []).get(e.job.kind))?.push(secs);
    run.say(`[ok ${finishedCount(run)}/${total}] ${e.job.label} (${e.job.id})${r ? `: ${describe(r)}` : ''} in ${formatDuration(secs)}; eta ${eta(run)}`);
  } else {
    const error = message?.error ?? `the worker exited with ${signal ? `signal ${signal}` : `code ${code}`}; see ${p.log}`;
    e.state = 'failed';
    e.error = error;
    // A worker that died without its answer wrote no result: record the failure here.
    if (!message && e.job.config.kind !== 'synth') {
      const existing = readResult(resultFile(run.results, e.job.id));
      if (!(existing.ok && existing.result.status === 'ok')) {
        writeResult(
          run.results,
          makeResult(e.job.id, resultJob(e.job.config, p.data ?? ''), { status: 'failed', error, runs: { model: p.out }, seconds: secs }),
        );
      }
    }
    run.summary.failed.push({ id: e.job.id, label: e.job.label, error });
    run.say(`[failed ${finishedCount(run)}/${total}] ${e.job.label} (${e.job.id}): ${error} (log: ${p.log})`);
  }
}

function describe(r: JobResult): string {
  const m = r.metrics;
  if (!m) return r.status;
  const base = `CA ${pct(m.ca)} ASR ${pct(m.asr)} RA ${pct(m.ra)}`;
  if (r.before) return `${base} (before: CA ${pct(r.before.ca)} ASR ${pct(r.before.asr)}), DER ${r.der?.toFixed(3) ?? 'n/a'}`;
  if (r.clean) return `${base} (clean model: CA ${pct(r.clean.ca)}, false triggers ${pct(r.clean.asr)})`;
  return base;
}
