// How well does `kwshield scan` tell backdoored models from clean ones? Runs the model-level scan on every
// run folder of a labelled list and writes per-model scores, AUROC, accuracy at the default threshold and
// target-class hits, for the Neural Cleanse anomaly index (the verdict), the gradient-norm signature and
// their rank combination, over the zoo and per model family.
//
// usage: npx tsx research/scan/scan-zoo.ts LIST.json --out DIR [--data D] [--clean-ratio 0.05] [--seed 0]
//                                    [--steps N] [--batch-size N]
// LIST.json: the zoo list of zoo.ts.
// Output: DIR/scan-zoo.jsonl (one line per scanned model; a second run skips those already there, so a killed
// run continues), DIR/scan-zoo.json (rows + summary) and DIR/scan-zoo.csv (rows).
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { toCsv } from '../../src/analysis/analysis-file.ts';
import { scanRun } from '../../src/analysis/scan-run.ts';
import { dataOf, readZoo, rowFile, studyArgs, targetOf, zooAuroc } from './zoo.ts';

/** Neural Cleanse's anomaly-index threshold (Wang et al. 2019), the rule this study measured. */
const NC_THRESHOLD = 2;

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
  const aurocOf = (score: (r: ZooRow, i: number) => number) =>
    zooAuroc(
      rows.map((r, i) => ({ label: r.label, value: score(r, i) })),
      (r) => r.value,
    );
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

async function main(): Promise<void> {
  const { values, positionals, cleanRatio, seed } = studyArgs(
    'research/scan/scan-zoo.ts LIST.json --out DIR [--data D] [--clean-ratio 0.05] [--seed 0] [--steps N] [--batch-size N]',
    { steps: { type: 'string' }, 'batch-size': { type: 'string' } },
    { positionals: 1, required: ['out'] },
  );
  const out = values.out as string;
  const list = readZoo(positionals[0]);
  const steps = values.steps ? Number(values.steps) : undefined;
  const batchSize = values['batch-size'] ? Number(values['batch-size']) : undefined;
  mkdirSync(out, { recursive: true });
  const lines = rowFile<ZooRow>(path.join(out, 'scan-zoo.jsonl'));
  const keyOf = (run: string) => JSON.stringify([path.resolve(run), seed, cleanRatio, steps ?? null, batchSize ?? null]);
  for (const [k, entry] of list.entries()) {
    const key = keyOf(entry.run);
    if (lines.done.has(key)) continue;
    const started = Date.now();
    const r = await scanRun({ model: entry.run, data: dataOf(entry, values.data as string | undefined), cleanRatio, seed, steps, batchSize });
    const row: ZooRow = {
      run: path.resolve(entry.run),
      label: entry.label,
      family: r.modelFamily,
      target: targetOf(entry),
      // Neural Cleanse's own rule, measured here (the product prints the index as an uncalibrated score)
      verdict: r.anomalyIndex > NC_THRESHOLD ? 'backdoored' : 'clean',
      nc: r.anomalyIndex,
      threshold: NC_THRESHOLD,
      gradient: r.gradientSignature.score,
      suspect: r.smallestMask,
      seconds: (Date.now() - started) / 1000,
    };
    lines.add(key, row);
    console.error(
      `[${k + 1}/${list.length}] ${entry.label} ${entry.run}: ${row.verdict} (nc ${row.nc.toFixed(2)}, gradient ${row.gradient.toFixed(3)}, suspect ${row.suspect}) ${row.seconds.toFixed(0)} s`,
    );
  }
  const chosen = list.map((e) => lines.done.get(keyOf(e.run)) as ZooRow);
  const summary = zooSummary(chosen);
  writeFileSync(
    path.join(out, 'scan-zoo.json'),
    `${JSON.stringify({ created: new Date().toISOString(), cleanRatio, seed, steps, batchSize, summary, rows: chosen }, null, 2)}\n`,
  );
  const header: (keyof ZooRow)[] = ['run', 'label', 'family', 'target', 'verdict', 'nc', 'threshold', 'gradient', 'suspect', 'seconds'];
  writeFileSync(
    path.join(out, 'scan-zoo.csv'),
    toCsv(
      header,
      chosen.map((r) => header.map((h) => r[h])),
    ),
  );
  console.log(JSON.stringify(summary.all));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
