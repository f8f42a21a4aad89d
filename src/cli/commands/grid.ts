// kwshield grid expand | run | collect: experiment grids (src/experiments/grid/grid-file.ts) expanded to job
// manifests, run shard by shard with local worker processes, and their results indexed in SQLite.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError } from '@commander-js/extra-typings';
import { writeJsonAtomic } from '../../data/atomic.ts';
import { wordSet } from '../../data/words.ts';
import { loadGrid } from '../../experiments/grid/grid-file.ts';
import { expandGrid, type Manifest, parseShard, type Shard, shardJobs } from '../../experiments/grid/manifest.ts';
import { jobPaths } from '../../experiments/grid/paths.ts';
import { okResult } from '../../experiments/grid/result.ts';
import { formatDuration, runGrid } from '../../experiments/grid/scheduler.ts';
import { collectResults } from '../../experiments/grid/store.ts';
import { report, UsageError } from '../output.ts';
import { checkDataFolder, checkOutputFolder } from '../preflight.ts';

const shardOption = (value: string): Shard => {
  try {
    return parseShard(value);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
};

const workersOption = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`--workers must be a whole number of at least 1, got '${value}'`);
  return n;
};

/** A grid file, or a manifest written by `grid expand --out` (then used as it is). */
function manifestOf(file: string, dataRoot?: string): Manifest {
  if (file.endsWith('.json')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      parsed = null;
    }
    if ((parsed as Manifest | null)?.format === 'kwshield-manifest') {
      if (dataRoot) throw new UsageError(`${file} is a manifest: its data folders are fixed; pass --data-root to grid expand instead`);
      return parsed as Manifest;
    }
  }
  const grid = loadGrid(file, { dataRoot });
  // A data folder that does not exist would otherwise surface only when its first job runs.
  for (const d of grid.data) if (d.path) checkDataFolder(d.path, `data entry '${d.name}' (path)`, wordSet(d.words));
  return expandGrid(grid);
}

export function gridCommand(): Command {
  const grid = new Command('grid').description('experiment grids: expand to a job manifest, run a shard of it, collect the results into SQLite');
  grid
    .command('expand')
    .exitOverride()
    .description('expand a grid file (YAML or JSON) into a manifest of jobs with stable ids')
    .argument('<grid>', 'a grid file (grids/*.yaml)')
    .option('--out <file>', 'write the manifest here (JSON)')
    .option('--data-root <dir>', 'run every data entry on this real Speech Commands folder instead')
    .option('--json', 'print the manifest as one JSON line')
    .action((file, o) => {
      const manifest = manifestOf(file, o.dataRoot);
      if (o.out) writeJsonAtomic(o.out, manifest);
      report(Boolean(o.json), manifest, () => {
        const c = manifest.counts;
        return [
          `grid ${manifest.grid.name}: ${c.jobs} jobs (${c.synth} synth, ${c.attack} attack, ${c.defense} defense) in ${c.rows} rows${o.out ? `; manifest written to ${o.out}` : ''}`,
          ...manifest.jobs.map((j) => `  ${j.id}  ${j.kind.padEnd(7)} ${j.row === null ? '   ' : String(j.row).padStart(3)}  ${j.label}`),
        ].join('\n');
      });
    });
  grid
    .command('run')
    .exitOverride()
    .description("run this shard's jobs (skipping finished ones), k at a time in child processes; one result JSON per job in --results")
    .argument('<grid>', 'a grid file, or a manifest from grid expand --out')
    .requiredOption('--results <dir>', 'the results folder (may be shared by several machines)')
    .option('--work <dir>', 'run folders, generated data, locks and logs (default: RESULTS/work)')
    .option('--shard <i/N>', 'run the rows whose index mod N is i (i from 0)', shardOption)
    .option('--workers <k>', 'jobs at a time, each in its own process', workersOption, 1)
    .option('--data-root <dir>', 'run every data entry on this real Speech Commands folder instead')
    .option('--dry-run', "list this shard's jobs and whether each is done; run nothing")
    .option('--json', 'print the summary as one JSON line')
    .action(async (file, o) => {
      const manifest = manifestOf(file, o.dataRoot);
      const results = path.resolve(o.results);
      if (!o.dryRun) checkOutputFolder(results, '--results');
      const work = path.resolve(o.work ?? path.join(results, 'work'));
      const shard = o.shard ?? { index: 0, count: 1 };
      if (o.dryRun) {
        const jobs = shardJobs(manifest, shard).map((j) => ({
          id: j.id,
          kind: j.kind,
          label: j.label,
          done: j.kind === 'synth' ? existsSync(path.join(jobPaths(manifest, work, j).out, 'synth.json')) : okResult(results, j.id) !== null,
        }));
        report(Boolean(o.json), { grid: manifest.grid.name, shard: `${shard.index}/${shard.count}`, jobs }, () =>
          [
            `grid ${manifest.grid.name}, shard ${shard.index}/${shard.count}: ${jobs.length} jobs, ${jobs.filter((j) => j.done).length} done`,
            ...jobs.map((j) => `  ${j.id}  ${j.done ? 'done  ' : 'to run'}  ${j.label}`),
          ].join('\n'),
        );
        return;
      }
      const summary = await runGrid({ manifest, results, work, shard, workers: o.workers });
      report(Boolean(o.json), summary, () =>
        [
          `grid ${summary.grid}, shard ${summary.shard}: ${summary.ok} ok, ${summary.failed.length} failed, ${summary.skipped} already done, ${summary.doneElsewhere} done by another process (${formatDuration(summary.seconds)})`,
          ...summary.failed.map((f) => `  failed ${f.id} ${f.label}: ${f.error}`),
          `  results: ${summary.results}`,
        ].join('\n'),
      );
      if (summary.failed.length) throw new Error(`${summary.failed.length} of ${summary.jobs} jobs failed (recorded in ${results}); run again to retry them`);
    });
  grid
    .command('collect')
    .exitOverride()
    .description('index a results folder into an SQLite database (upsert by id; corrupt files are reported and skipped)')
    .argument('<results>', 'the results folder')
    .requiredOption('--db <file>', 'the SQLite file (created if missing)')
    .option('--json', 'print the summary as one JSON line')
    .action((results, o) => {
      const s = collectResults(results, o.db);
      report(Boolean(o.json), s, () =>
        [
          `${s.files} result files: ${s.added} added, ${s.updated} updated, ${s.unchanged} unchanged, ${s.corrupt.length} corrupt (skipped); ${s.rows} rows in ${s.db}`,
          ...s.corrupt.map((c) => `  corrupt: ${c.file}: ${c.problem}`),
        ].join('\n'),
      );
    });
  return grid;
}
