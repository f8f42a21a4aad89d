// Runs defenses over finished attack runs and appends one JSON line per (run, setting, seed) to a results
// file; lines already there are skipped, so a killed sweep continues where it stopped. The GN-FT study
// (docs/gnft-study.md) and the README's defense tables are made with it.
//
// usage: npx tsx scripts/sweep.ts CONFIG.json
// CONFIG: {
//   "runs": ["path/to/attack-run", ...],          attack runs (kwshield attack)
//   "settings": { "name": { "defense": "gnft", "recipe": "default", "options": { "lr": 0.01 } }, ... },
//   "seeds": [0, 1, 2],                           defense seeds (clean subset and shuffles)
//   "cleanRatio": 0.05,
//   "results": "path/to/results.jsonl",
//   "work": "path/for/purified/runs"              (defended models; may be deleted afterwards)
// }
import { appendFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { defendRun } from '../src/experiments/defend-run.ts';

interface Setting {
  defense: string;
  recipe?: 'default' | 'paper';
  options?: Record<string, unknown>;
}

interface Config {
  runs: string[];
  settings: Record<string, Setting>;
  seeds?: number[];
  cleanRatio?: number;
  results: string;
  work: string;
  /** keep the purified model folders (default: delete them after measuring) */
  keepModels?: boolean;
}

const configFile = process.argv[2];
if (!configFile) {
  console.error('usage: npx tsx scripts/sweep.ts CONFIG.json');
  process.exit(2);
}
const config = JSON.parse(readFileSync(configFile, 'utf8')) as Config;
const seeds = config.seeds ?? [0];
const cleanRatio = config.cleanRatio ?? 0.05;
const done = new Set<string>();
if (existsSync(config.results)) {
  for (const line of readFileSync(config.results, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line);
    done.add(`${r.run}|${r.setting}|${r.seed}|${r.cleanRatio}`);
  }
}

const jobs = config.runs.flatMap((run) => Object.entries(config.settings).flatMap(([name, setting]) => seeds.map((seed) => ({ run, name, setting, seed }))));
let index = 0;
const skipped: string[] = [];
for (const job of jobs) {
  index++;
  const key = `${path.resolve(job.run)}|${job.name}|${job.seed}|${cleanRatio}`;
  if (done.has(key)) continue;
  // A run still training (or never made) is skipped, not fatal, so that one config can be run again as its
  // attack runs finish; the skipped jobs are listed at the end.
  if (!existsSync(path.join(job.run, 'metrics.json'))) {
    skipped.push(`${job.name} on ${path.basename(job.run)}`);
    continue;
  }
  const attack = JSON.parse(readFileSync(path.join(job.run, 'metrics.json'), 'utf8'));
  const out = path.join(config.work, job.name, `${path.basename(job.run)}-d${job.seed}-c${cleanRatio}`);
  const started = Date.now();
  process.stderr.write(`[${index}/${jobs.length}] ${job.name} on ${path.basename(job.run)} (seed ${job.seed}) ... `);
  try {
    const r = await defendRun({
      model: job.run,
      data: attack.data,
      defense: job.setting.defense,
      recipe: job.setting.recipe ?? 'default',
      options: job.setting.options,
      attackOf: job.run,
      cleanRatio,
      seed: job.seed,
      out,
      force: true,
    });
    const line = {
      run: path.resolve(job.run),
      attack: attack.attack,
      model: attack.model,
      attackSeed: attack.seed,
      setting: job.name,
      defense: r.defense,
      recipe: r.recipe,
      options: r.options,
      seed: job.seed,
      cleanRatio,
      cleanClips: r.cleanClips,
      before: r.before,
      after: r.after,
      der: r.der,
      holdoutBefore: r.report.holdoutBefore,
      holdoutAfter: r.report.holdoutAfter,
      chosenEpoch: r.report.details.chosenEpoch,
      details: Object.fromEntries(Object.entries(r.report.details).filter(([k]) => k !== 'trail')),
      epochs: r.report.epochs.map((e) => ({ epoch: e.epoch, loss: e.loss, holdout: e.holdoutAccuracy })),
      seconds: r.seconds.defense,
      date: new Date().toISOString(),
    };
    appendFileSync(config.results, `${JSON.stringify(line)}\n`);
    process.stderr.write(
      `CA ${(100 * (r.before?.ca ?? 0)).toFixed(1)} -> ${(100 * (r.after?.ca ?? 0)).toFixed(1)}, ASR ${(100 * (r.before?.asr ?? 0)).toFixed(1)} -> ${(100 * (r.after?.asr ?? 0)).toFixed(1)} (${((Date.now() - started) / 1000).toFixed(0)} s)\n`,
    );
  } catch (e) {
    process.stderr.write(`failed: ${(e as Error).message}\n`);
  }
  if (!config.keepModels) rmSync(out, { recursive: true, force: true });
}
if (skipped.length > 0) {
  process.stderr.write(`skipped ${skipped.length} job(s) whose run has no metrics.json yet: ${skipped.join(', ')}\n`);
}
