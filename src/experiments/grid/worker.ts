// One grid job in its own process (one libtorch per process; KWSHIELD_THREADS set by the parent):
//   node --import tsx src/experiments/grid/worker.ts '<task JSON>'
// It takes the job's lock, runs the job resumably (attackRun / defendRun with resume: true, so a killed
// job continues from its last checkpoint), writes RESULTS/<id>.json (status ok, or failed with the
// error), tells the parent over IPC, and exits. Exit codes: 0 the job ended (ok or failed, see the
// result), 3 another process holds the job's lock, 1 the worker itself broke. When the parent dies the
// IPC channel closes and the worker stops too: its lock is then stale and the next run takes it over.
// A TorchScript model's row (attack 'own') imports the archive instead of training and attacking, and measures
// CA on the test split and ASR/RA on the user's triggered clips, before and after each defense.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { BackdoorMetrics } from '../../analysis/metrics.ts';
import { getFrontEnd } from '../../audio/frontends.ts';
import { writeJsonAtomic } from '../../data/atomic.ts';
import { disposeFeatureSet } from '../../data/feature-set.ts';
import { featureSetOf } from '../../data/features.ts';
import { readSpeechCommands } from '../../data/speech-commands.ts';
import { synthesizeSpeechCommands } from '../../data/synth.ts';
import { loadModel } from '../../models/checkpoint.ts';
import { attackRun } from '../attack-run.ts';
import { defendRun } from '../defend-run.ts';
import { derBetween, evaluate } from '../evaluate.ts';
import { importRun } from '../import-run.ts';
import { describeHolder, heartbeat, tryLock, waitForLock } from '../lock.ts';
import type { EpochRecord } from '../train.ts';
import { trainRun } from '../train-run.ts';
import { evaluateTriggeredFolder, readTriggeredFolder } from '../triggered-folder.ts';
import type { ManifestJob } from './manifest.ts';
import type { JobPaths } from './paths.ts';
import { type JobResult, type Metrics3, makeResult, okResult, readResult, resultFile, resultJob, writeResult } from './result.ts';

export interface WorkerTask {
  job: ManifestJob;
  paths: JobPaths;
  results: string;
  /** defense jobs: the attack run folder to purify */
  attackRun?: string;
}

/** What a worker tells its parent before it exits. */
export interface WorkerMessage {
  type: 'done';
  id: string;
  status: 'ok' | 'failed' | 'busy';
  error?: string;
  result?: JobResult;
}

export const WORKER_BUSY = 3;

/**
 * The parent's pid when run as a program. Training is synchronous between epochs, so the IPC channel's
 * 'disconnect' may wait a long time to be noticed; the progress callbacks check whether this process was
 * orphaned (its parent pid changed), so a killed `grid run` stops its workers within a batch.
 */
let parentPid: number | null = null;
/** Locks this process holds, refreshed every 30 s from the same callbacks (lock.ts heartbeat). */
const held = new Set<string>();
let lastBeat = Date.now();
const stopIfOrphaned = () => {
  if (parentPid !== null && process.ppid !== parentPid) process.exit(70);
  if (Date.now() - lastBeat > 30_000) {
    lastBeat = Date.now();
    for (const file of held) heartbeat(file);
  }
};
const onBatch = () => stopIfOrphaned();

const log = (line: string) => {
  stopIfOrphaned();
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
};

async function runSynth(task: WorkerTask): Promise<void> {
  const c = task.job.config;
  if (c.kind !== 'synth') throw new Error('not a synth job');
  if (existsSync(path.join(task.paths.out, 'synth.json'))) return;
  log(`generating ${c.dataName} (${c.synth.preset}, ${c.words}, seed ${c.synth.seed}) into ${task.paths.out}`);
  let last = 0;
  await synthesizeSpeechCommands({
    out: task.paths.out,
    preset: c.synth.preset,
    words: c.words,
    seed: c.synth.seed,
    force: true,
    onProgress: (done, total) => {
      if (done === total || Date.now() - last > 10_000) {
        last = Date.now();
        log(`synth ${done}/${total}`);
      }
    },
  });
}

async function runAttack(task: WorkerTask, started: number): Promise<JobResult> {
  const { job, paths } = task;
  const c = job.config;
  if (c.kind !== 'attack' || !paths.data || !paths.clean) throw new Error('not an attack job');
  const onEpoch = (row: EpochRecord, epochs: number) =>
    log(`epoch ${row.epoch + 1}/${epochs}: loss ${row.trainLoss.toFixed(3)}, validation ${(100 * row.valAccuracy).toFixed(1)}% (${row.seconds.toFixed(1)} s)`);
  // The clean model of this configuration, trained once under its own lock: attack jobs of the same data,
  // model, front-end and seed (other attacks) share it, and two of them must not train it at once.
  const cleanLock = await waitForLock(paths.clean.lock, {
    purpose: `clean model for ${job.id}`,
    onWait: (h) => log(`waiting for the clean model ${paths.clean?.dir}, trained by ${describeHolder(h)}`),
    until: () => {
      stopIfOrphaned();
      return false;
    },
  });
  if (cleanLock) held.add(paths.clean.lock);
  try {
    if (!existsSync(path.join(paths.clean.dir, 'model.json'))) {
      log(`training the clean ${c.model} on ${c.frontEnd} in ${paths.clean.dir}`);
      await trainRun({
        data: paths.data,
        model: c.model,
        out: paths.clean.dir,
        frontEnd: c.frontEnd,
        recipe: c.trainRecipe,
        epochs: c.epochs,
        ...(c.batchSize ? { overrides: { batchSize: c.batchSize } } : {}),
        seed: c.attackSeed,
        resume: true,
        onStage: log,
        onBatch,
        onEpoch,
      });
    }
  } finally {
    held.delete(paths.clean.lock);
    cleanLock?.release();
  }
  const r = await attackRun({
    data: paths.data,
    attack: c.attack,
    model: c.model,
    out: paths.out,
    frontEnd: c.frontEnd,
    poisonRatio: c.poisonRatio,
    target: c.target,
    seed: c.attackSeed,
    attackOptions: c.attackOptions,
    words: c.words,
    recipe: c.trainRecipe,
    epochs: c.epochs,
    ...(c.batchSize ? { overrides: { batchSize: c.batchSize } } : {}),
    cleanRun: paths.clean.dir,
    resume: true,
    onStage: log,
    onBatch,
    onEpoch,
    onExtract: onBatch,
    onAttackProgress: onBatch,
  });
  return makeResult(job.id, resultJob(c, paths.data), {
    status: 'ok',
    metrics: r.backdoored,
    clean: r.clean,
    runs: { model: path.resolve(paths.out), attack: path.resolve(paths.out) },
    seconds: (Date.now() - started) / 1000,
  });
}

/** A TorchScript model's run: CA on the test split of `data`; ASR and RA on the triggered clips (null without). */
async function measureOwnModel(run: string, data: string, triggered: string | undefined, target: string): Promise<Metrics3> {
  const { model, manifest } = loadModel(run);
  try {
    const frontEnd = getFrontEnd(manifest.frontEnd);
    const dataset = await readSpeechCommands(data, { words: manifest.classes });
    const test = await featureSetOf(
      dataset.entries.filter((e) => e.split === 'test'),
      manifest.classes,
      frontEnd,
      { onProgress: () => onBatch() },
    );
    let ca: number;
    try {
      ca = evaluate(model, test).accuracy;
    } finally {
      disposeFeatureSet(test);
    }
    if (!triggered) return { ca, asr: null, ra: null };
    const clips = await readTriggeredFolder(triggered, manifest.classes);
    const t = await evaluateTriggeredFolder(model, { dir: triggered, clips }, target, manifest.classes, frontEnd);
    return { ca, asr: t.asr, ra: t.ra };
  } finally {
    model.dispose();
  }
}

/** The head of a TorchScript model's row: import the archive (the one the grid was read with) and measure it. */
async function runOwnModel(task: WorkerTask, started: number): Promise<JobResult> {
  const { job, paths } = task;
  const c = job.config;
  if (c.kind !== 'attack' || !c.torchscript || !paths.data || !paths.torchscript) throw new Error("not a TorchScript model's job");
  if (!existsSync(path.join(paths.out, 'model.json'))) {
    log(`importing ${paths.torchscript.file} into ${paths.out}`);
    const r = importRun({ torchscript: paths.torchscript.file, input: c.torchscript.input, classes: c.torchscript.classes, out: paths.out, force: true });
    if (r.sha256 !== c.torchscript.sha256) {
      throw new Error(
        `${paths.torchscript.file} changed since the grid was read (sha256 ${r.sha256.slice(0, 12)}..., the job's ${c.torchscript.sha256.slice(0, 12)}...); run the grid again to make the jobs of the archive as it is now`,
      );
    }
    log(`BatchNorm: ${r.batchNormNote}`);
  }
  log('measuring the model as given');
  const metrics = await measureOwnModel(paths.out, paths.data, paths.torchscript.triggered, c.target);
  // What a defense job of this row reads as its "before", as it reads an attack run's metrics.json.
  writeJsonAtomic(path.join(paths.out, 'metrics.json'), {
    kind: 'import',
    data: path.resolve(paths.data),
    backdoored: metrics,
    created: new Date().toISOString(),
  });
  return makeResult(job.id, resultJob(c, paths.data), {
    status: 'ok',
    metrics,
    runs: { model: path.resolve(paths.out), attack: path.resolve(paths.out) },
    seconds: (Date.now() - started) / 1000,
  });
}

async function runDefense(task: WorkerTask, started: number): Promise<JobResult> {
  const { job, paths } = task;
  const c = job.config;
  if (c.kind !== 'defense' || !paths.data) throw new Error('not a defense job');
  const attack = task.attackRun;
  if (!attack || !existsSync(path.join(attack, 'metrics.json'))) {
    throw new Error(
      `the attack run of this job (${attack ?? 'unknown'}) is not on this machine; share the work folder between machines, or delete the attack job's result ${job.dependsOn[0]}.json to make it again here`,
    );
  }
  const own = paths.torchscript;
  const r = await defendRun({
    model: attack,
    data: paths.data,
    defense: c.defense,
    out: paths.out,
    cleanRatio: c.cleanRatio,
    recipe: c.recipe,
    options: c.options,
    // a TorchScript model has no attack run of kwshield's: it is measured on the user's clips below
    ...(own ? {} : { attackOf: attack }),
    seed: c.seed,
    resume: true,
    onStage: log,
    onExtract: onBatch,
    progress: {
      stage: log,
      step: onBatch,
      epoch: (row) => log(`${row.phase} epoch ${row.epoch + 1}/${row.epochs}: loss ${row.loss.toFixed(3)}`),
    },
  });
  let before: Metrics3 | undefined = r.before;
  let after: Metrics3 | undefined = r.after;
  let der = r.der;
  if (own) {
    before = (JSON.parse(readFileSync(path.join(attack, 'metrics.json'), 'utf8')) as { backdoored: Metrics3 }).backdoored;
    log('measuring the purified model');
    after = await measureOwnModel(paths.out, paths.data, own.triggered, c.target);
    der = before.asr !== null && after.asr !== null ? derBetween(before as BackdoorMetrics, after as BackdoorMetrics) : undefined;
  }
  if (!after || !before) throw new Error('the defense run measured no before/after metrics');
  return makeResult(job.id, resultJob(c, paths.data), {
    status: 'ok',
    metrics: after,
    before,
    der,
    runs: { model: path.resolve(paths.out), attack: path.resolve(attack) },
    seconds: (Date.now() - started) / 1000,
  });
}

/** Runs one task in this process; returns what to tell the parent. */
export async function runTask(task: WorkerTask): Promise<WorkerMessage> {
  const { job } = task;
  const lock = tryLock(task.paths.lock, `${job.id} ${job.label}`);
  if (!lock.acquired) return { type: 'done', id: job.id, status: 'busy', error: `held by ${describeHolder(lock.holder)}` };
  if (lock.tookOver) log(`took over the stale lock of ${describeHolder(lock.tookOver)}`);
  held.add(task.paths.lock);
  const started = Date.now();
  try {
    if (job.kind === 'synth') {
      await runSynth(task);
      return { type: 'done', id: job.id, status: 'ok' };
    }
    const done = okResult(task.results, job.id);
    if (done) return { type: 'done', id: job.id, status: 'ok', result: done };
    log(`${job.id}: ${job.label}`);
    try {
      const c = job.config;
      const result =
        job.kind === 'defense'
          ? await runDefense(task, started)
          : c.kind === 'attack' && c.torchscript
            ? await runOwnModel(task, started)
            : await runAttack(task, started);
      writeResult(task.results, result);
      log(`ok in ${result.seconds.toFixed(1)} s`);
      return { type: 'done', id: job.id, status: 'ok', result };
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      log(`failed: ${e instanceof Error ? e.stack : error}`);
      const c = job.config;
      if (c.kind === 'synth') throw e;
      const result = makeResult(job.id, resultJob(c, task.paths.data ?? ''), {
        status: 'failed',
        error,
        runs: { model: path.resolve(task.paths.out), ...(task.attackRun ? { attack: path.resolve(task.attackRun) } : {}) },
        seconds: (Date.now() - started) / 1000,
      });
      // Never replace a finished result (another process may have finished the job meanwhile).
      const existing = readResult(resultFile(task.results, job.id));
      if (!(existing.ok && existing.result.status === 'ok')) writeResult(task.results, result);
      return { type: 'done', id: job.id, status: 'failed', error, result };
    }
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    log(`failed: ${e instanceof Error ? e.stack : error}`);
    return { type: 'done', id: job.id, status: 'failed', error };
  } finally {
    held.delete(task.paths.lock);
    lock.release();
  }
}

// As a program: the task from argv, the answer over IPC (or stdout without a parent).
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  parentPid = process.ppid;
  process.on('disconnect', () => process.exit(70));
  const task = JSON.parse(process.argv[2] ?? 'null') as WorkerTask | null;
  if (!task) {
    process.stderr.write("usage: node --import tsx src/experiments/grid/worker.ts '<task JSON>'\n");
    process.exit(2);
  }
  const message = await runTask(task);
  const code = message.status === 'busy' ? WORKER_BUSY : 0;
  if (process.send) process.send(message, () => process.exit(code));
  else {
    process.stdout.write(`${JSON.stringify(message)}\n`);
    process.exit(code);
  }
}
