// How well does `kwshield scan` tell backdoored models from clean ones? Runs the model-level scan on every
// run folder of a labelled list and writes per-model scores, AUROC, accuracy at the default threshold and
// target-class hits, for the Neural Cleanse anomaly index (the verdict), the gradient-norm signature and
// their rank combination, over the zoo and per model family.
//
// usage: npx tsx scripts/scan-zoo.ts LIST.json --out DIR [--data D] [--clean-ratio 0.05] [--seed 0]
//                                    [--steps N] [--batch-size N]
// LIST.json: [ { "run": "/work/exp/runs/resnet-badnets-s0", "label": "backdoored" },
//              { "run": "/work/exp/cache/clean-runs/resnet-mfcc-16k-fe96888fb35aed33", "label": "clean" },
//              { "run": "...", "label": "backdoored", "target": "up", "data": "/work/data/small-scd10" } ]
//   target: the backdoor's target word (default: the run's poison-plan.json); data: default --data, else
//   the data the run was trained on (model.json provenance).
// Output: DIR/scan-zoo.jsonl (one line per scanned model; a second run skips those already there, so a killed
// run continues), DIR/scan-zoo.json (rows + summary) and DIR/scan-zoo.csv (rows).
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { toCsv } from '../src/analysis/analysis-file.ts';
import { auroc } from '../src/analysis/auroc.ts';
import { scanRun } from '../src/analysis/scan-run.ts';
import { readManifest } from '../src/models/checkpoint.ts';

export interface ZooEntry {
  run: string;
  label: 'backdoored' | 'clean';
  target?: string;
  data?: string;
}

export interface ZooRow {
  run: string;
  label: 'backdoored' | 'clean';
  family: string;
  target: string | null;
  verdict: 'backdoored' | 'clean';
  /** Neural Cleanse anomaly index of the smallest mask */
  nc: number;
  threshold: number;
  /** gradient-norm signature (mean log tail ratio) */
  gradient: number;
  suspect: string;
  seconds: number;
}

export interface ScoreSummary {
  models: number;
  backdoored: number;
  clean: number;
  auroc: { nc: number; gradient: number; combined: number };
  /** of the verdict at the default threshold */
  accuracy: number;
  tpr: number;
  fpr: number;
  /** backdoored models whose suspect is the true target, of those with a known target */
  targetHits: { hits: number; of: number; share: number };
  /** the same among the backdoored models the verdict flagged */
  targetHitsFlagged: { hits: number; of: number; share: number };
}

/** Percentile rank of each value among values (ties share their mean rank), in [0, 1]. */
export function percentileRanks(values: readonly number[]): number[] {
  const order = values.map((v, i) => ({ v, i })).sort((a, b) => a.v - b.v);
  const ranks = new Array<number>(values.length);
  for (let k = 0; k < order.length; ) {
    let j = k;
    while (j + 1 < order.length && order[j + 1].v === order[k].v) j++;
    for (let m = k; m <= j; m++) ranks[order[m].i] = values.length > 1 ? (k + j) / 2 / (values.length - 1) : 0.5;
    k = j + 1;
  }
  return ranks;
}

export function summarise(rows: readonly ZooRow[]): ScoreSummary {
  const pos = rows.filter((r) => r.label === 'backdoored');
  const neg = rows.filter((r) => r.label === 'clean');
  // The rank combination needs no threshold: the mean of each model's percentile ranks by both scores.
  const ncRanks = percentileRanks(rows.map((r) => r.nc));
  const gradientRanks = percentileRanks(rows.map((r) => r.gradient));
  const combined = rows.map((_, i) => (ncRanks[i] + gradientRanks[i]) / 2);
  const scoresOf = (label: string, score: (r: ZooRow, i: number) => number) => rows.flatMap((r, i) => (r.label === label ? [score(r, i)] : []));
  const aurocOf = (score: (r: ZooRow, i: number) => number) => auroc(scoresOf('backdoored', score), scoresOf('clean', score));
  const right = rows.filter((r) => r.verdict === r.label).length;
  const hitsOf = (subset: ZooRow[]) => {
    const known = subset.filter((r) => r.target !== null);
    const hits = known.filter((r) => r.suspect === r.target).length;
    return { hits, of: known.length, share: known.length ? hits / known.length : Number.NaN };
  };
  return {
    models: rows.length,
    backdoored: pos.length,
    clean: neg.length,
    auroc: { nc: aurocOf((r) => r.nc), gradient: aurocOf((r) => r.gradient), combined: aurocOf((_, i) => combined[i]) },
    accuracy: rows.length ? right / rows.length : Number.NaN,
    tpr: pos.length ? pos.filter((r) => r.verdict === 'backdoored').length / pos.length : Number.NaN,
    fpr: neg.length ? neg.filter((r) => r.verdict === 'backdoored').length / neg.length : Number.NaN,
    targetHits: hitsOf(pos),
    targetHitsFlagged: hitsOf(pos.filter((r) => r.verdict === 'backdoored')),
  };
}

/** The zoo's summary and one per model family. */
export function zooSummary(rows: readonly ZooRow[]): { all: ScoreSummary; byFamily: Record<string, ScoreSummary> } {
  const families = [...new Set(rows.map((r) => r.family))].sort();
  return { all: summarise(rows), byFamily: Object.fromEntries(families.map((f) => [f, summarise(rows.filter((r) => r.family === f))])) };
}

function targetOf(entry: ZooEntry): string | null {
  if (entry.target) return entry.target;
  const plan = path.join(entry.run, 'poison-plan.json');
  if (entry.label === 'backdoored' && existsSync(plan)) return JSON.parse(readFileSync(plan, 'utf8')).target ?? null;
  return null;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      data: { type: 'string' },
      'clean-ratio': { type: 'string', default: '0.05' },
      seed: { type: 'string', default: '0' },
      steps: { type: 'string' },
      'batch-size': { type: 'string' },
    },
  });
  if (positionals.length !== 1 || !values.out) {
    console.error('usage: npx tsx scripts/scan-zoo.ts LIST.json --out DIR [--data D] [--clean-ratio 0.05] [--seed 0] [--steps N] [--batch-size N]');
    process.exit(2);
  }
  const list = JSON.parse(readFileSync(positionals[0], 'utf8')) as ZooEntry[];
  for (const e of list) {
    if (typeof e.run !== 'string' || (e.label !== 'backdoored' && e.label !== 'clean'))
      throw new Error(`${positionals[0]}: every entry needs "run" and "label" (backdoored | clean), got ${JSON.stringify(e)}`);
  }
  const cleanRatio = Number(values['clean-ratio']);
  const seed = Number(values.seed);
  const steps = values.steps ? Number(values.steps) : undefined;
  const batchSize = values['batch-size'] ? Number(values['batch-size']) : undefined;
  mkdirSync(values.out, { recursive: true });
  const lines = path.join(values.out, 'scan-zoo.jsonl');
  const keyOf = (run: string) => JSON.stringify([path.resolve(run), seed, cleanRatio, steps ?? null, batchSize ?? null]);
  const rows = new Map<string, ZooRow>();
  if (existsSync(lines)) {
    for (const line of readFileSync(lines, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const saved = JSON.parse(line) as ZooRow & { key: string };
      rows.set(saved.key, saved);
    }
  }
  for (const [k, entry] of list.entries()) {
    const key = keyOf(entry.run);
    if (rows.has(key)) continue;
    const data = entry.data ?? values.data ?? (readManifest(entry.run).provenance?.data as string | undefined);
    if (!data) throw new Error(`${entry.run}: no data folder (give --data or "data" in the list)`);
    const started = Date.now();
    const r = await scanRun({ model: entry.run, data, cleanRatio, seed, steps, batchSize });
    const row: ZooRow = {
      run: path.resolve(entry.run),
      label: entry.label,
      family: r.modelFamily,
      target: targetOf(entry),
      verdict: r.verdict,
      nc: r.score,
      threshold: r.threshold,
      gradient: r.gradientSignature.score,
      suspect: r.suspectTarget,
      seconds: (Date.now() - started) / 1000,
    };
    rows.set(key, row);
    appendFileSync(lines, `${JSON.stringify({ key, ...row })}\n`);
    console.error(
      `[${k + 1}/${list.length}] ${entry.label} ${entry.run}: ${row.verdict} (nc ${row.nc.toFixed(2)}, gradient ${row.gradient.toFixed(3)}, suspect ${row.suspect}) ${row.seconds.toFixed(0)} s`,
    );
  }
  const chosen = list.map((e) => rows.get(keyOf(e.run)) as ZooRow);
  const summary = zooSummary(chosen);
  writeFileSync(
    path.join(values.out, 'scan-zoo.json'),
    `${JSON.stringify({ created: new Date().toISOString(), cleanRatio, seed, steps, batchSize, summary, rows: chosen }, null, 2)}\n`,
  );
  const header: (keyof ZooRow)[] = ['run', 'label', 'family', 'target', 'verdict', 'nc', 'threshold', 'gradient', 'suspect', 'seconds'];
  writeFileSync(
    path.join(values.out, 'scan-zoo.csv'),
    toCsv(
      header,
      chosen.map((r) => header.map((h) => r[h])),
    ),
  );
  console.log(JSON.stringify(summary.all));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
