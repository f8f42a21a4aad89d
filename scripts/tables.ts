// Markdown tables for the README from finished runs: attack runs (their metrics.json) and defense sweeps
// (scripts/sweep.ts results). Numbers are read, never typed in.
//
// usage: npx tsx scripts/tables.ts attacks RUN...                 CA/ASR of each attack run and its clean model
//        npx tsx scripts/tables.ts defenses RESULTS.jsonl [...]   mean ± std over seeds per attack x setting
//        npx tsx scripts/tables.ts defense-rows RESULTS.jsonl [...] [--settings a,b] [--attack-seeds 0,1]   one row per attack x setting:
//                                                                 CA, ASR, RA, DER, models, wall time
//        npx tsx scripts/tables.ts study RESULTS.jsonl [...]      one row per setting x clean ratio (docs/gnft-study.md)
//        npx tsx scripts/tables.ts speed BENCH.jsonl [...]        the lines of npm run bench / bench:models / bench:epoch
//        npx tsx scripts/tables.ts grid-smoke SMOKE.jsonl          the 5 x 7 (model, attack) grid of scripts/attack-grid-smoke.sh
//        npx tsx scripts/tables.ts cost RESULTS.jsonl [...]       per setting x clean ratio: CA / ASR after and wall seconds
//                                                                 (how each defense's cost grows with the clean set)
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getAttack } from '../src/attacks/index.ts';
import { lastPerKey, meanStdText, percentText, meanStd as statOf } from '../src/experiments/aggregate.ts';

const pct = percentText;
/** '98.8 ± 0.5' over seeds, in percent. */
const meanStd = (xs: number[]): string => meanStdText(statOf(xs), 'n/a');

function attacks(runs: string[]): void {
  console.log(
    '| model | attack | options | front-end | seed | poisoned | CA | ASR | RA | clean CA | clean false-trigger rate | backdoored training s | total s |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const run of runs) {
    const m = JSON.parse(readFileSync(path.join(run, 'metrics.json'), 'utf8'));
    const defaults = getAttack(m.attack).options;
    const changed = Object.entries(m.options ?? {})
      .filter(([k, v]) => defaults[k] && defaults[k].default !== v)
      .map(([k, v]) => `${k}=${v}`);
    console.log(
      `| ${m.model} | ${m.attack}${m.substitution ? '*' : ''} | ${changed.join(', ') || 'defaults'} | ${m.frontEnd} | ${m.seed} | ${m.poisoned} (${m.labelMode}) | ${pct(m.backdoored.ca)} | ${pct(m.backdoored.asr)} | ${pct(m.backdoored.ra)} | ${pct(m.clean.ca)} | ${pct(m.clean.asr)} | ${m.seconds.training.toFixed(0)} | ${m.seconds.total.toFixed(0)} |`,
    );
  }
}

interface Row {
  run: string;
  attack: string;
  defense: string;
  options: Record<string, unknown>;
  cleanRatio: number;
  cleanClips: number;
  details: { steps?: number };
  model: string;
  setting: string;
  before: { ca: number; asr: number; ra: number };
  after: { ca: number; asr: number; ra: number };
  der: number;
  seconds: number;
  seed: number;
  attackSeed: number;
  date: string;
}

function readRows(files: string[]): Row[] {
  return files.flatMap((f) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as Row),
  );
}

/**
 * The rows of each (model, attack), in the order first seen, with the backdoored model's metrics before
 * any defense (No Defense): one value per backdoored model, that is per attack seed.
 */
function byModelAndAttack(rows: Row[]): { model: string; attack: string; of: Row[]; before: Row['before'][] }[] {
  return [...new Set(rows.map((r) => `${r.model}|${r.attack}`))].map((g) => {
    const [model, attack] = g.split('|');
    const of = rows.filter((r) => r.model === model && r.attack === attack);
    const before = lastPerKey(
      of,
      (r) => r.attackSeed,
      (r) => r.before,
    );
    return { model, attack, of, before };
  });
}

/** The options that tell the study's settings apart, compactly. */
function recipeOf(r: Row): string {
  const o = r.options;
  const parts = [`${o.optimizer} lr ${o.lr}`, `batch ${o.batchSize}`, `${o.epochs} ep ${o.schedule}`, `BN ${o.batchNorm}`, `wd ${o.weightDecay}`];
  if (o.clipNorm) parts.push(`clip ${o.clipNorm}`);
  if (o.mixup) parts.push('mixup');
  if (o.augment) parts.push('augment');
  if (r.defense === 'gnft') parts.push(`r ${o.r} ${o.normalization}`, `α ${o.alpha}`);
  return parts.join(', ');
}

function study(files: string[]): void {
  const rows = readRows(files);
  const keys = [...new Set(rows.map((r) => `${r.setting}|${r.cleanRatio}`))];
  console.log('| setting | defense | recipe | clean ratio (clips) | steps | attack runs x seeds | CA after | ASR after | s per run |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const key of keys) {
    const of = rows.filter((r) => `${r.setting}|${r.cleanRatio}` === key);
    const r0 = of[0];
    const runs = [...new Set(of.map((r) => path.basename(r.run)))];
    const secs = of.reduce((a, r) => a + r.seconds, 0) / of.length;
    console.log(
      `| ${r0.setting} | ${r0.defense} | ${recipeOf(r0)} | ${r0.cleanRatio} (${r0.cleanClips}) | ${r0.details?.steps ?? 'n/a'} | ${runs.join(', ')} x ${new Set(of.map((r) => r.seed)).size} | ${meanStd(of.map((r) => r.after.ca))} | ${meanStd(of.map((r) => r.after.asr))} | ${secs.toFixed(0)} |`,
    );
  }
}

function defenses(files: string[]): void {
  const rows = readRows(files);
  const settings = [...new Set(rows.map((r) => r.setting))];
  console.log(`| model | attack | No Defense ASR | No Defense CA | ${settings.map((s) => `${s} ASR | ${s} CA`).join(' | ')} |`);
  console.log(`|---|---|---|---|${settings.map(() => '---|---').join('|')}|`);
  for (const { model, attack, of, before } of byModelAndAttack(rows)) {
    const cells = settings.map((s) => {
      const sr = of.filter((r) => r.setting === s);
      return `${meanStd(sr.map((r) => r.after.asr))} | ${meanStd(sr.map((r) => r.after.ca))}`;
    });
    console.log(`| ${model} | ${attack} | ${meanStd(before.map((b) => b.asr))} | ${meanStd(before.map((b) => b.ca))} | ${cells.join(' | ')} |`);
  }
  const seconds = settings.map((s) => {
    const t = rows.filter((r) => r.setting === s).map((r) => r.seconds);
    return `${s} ${(t.reduce((a, b) => a + b, 0) / Math.max(1, t.length)).toFixed(0)} s`;
  });
  const dates = rows.map((r) => r.date).sort();
  console.log(
    `\nMean wall time per defense run: ${seconds.join(', ')}. Runs ${dates[0]?.slice(0, 10)} to ${dates[dates.length - 1]?.slice(0, 10)} on ${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}).`,
  );
}

/** One row per attack and setting (No Defense first), for tables with many defenses: CA, ASR, RA, DER. */
function defenseRows(args: string[]): void {
  const flag = (name: string) => {
    const at = args.indexOf(name);
    return at >= 0 ? args[at + 1]?.split(',') : undefined;
  };
  const only = flag('--settings');
  const seeds = flag('--attack-seeds')?.map(Number);
  const files = args.filter((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
  // one line per (run, setting, seed): a job two sweeps both ran counts once
  const unique = new Map(readRows(files).map((r) => [`${r.run}|${r.setting}|${r.seed}|${r.cleanRatio}`, r]));
  const rows = [...unique.values()].filter((r) => (!only || only.includes(r.setting)) && (!seeds || seeds.includes(r.attackSeed)));
  const settings = only ?? [...new Set(rows.map((r) => r.setting))];
  console.log('| model | attack | defense | models | CA | ASR | RA | DER | wall s |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const { model, attack, of, before } of byModelAndAttack(rows)) {
    console.log(
      `| ${model} | ${attack} | No Defense | ${before.length} | ${meanStd(before.map((b) => b.ca))} | ${meanStd(before.map((b) => b.asr))} | ${meanStd(before.map((b) => b.ra))} | - | - |`,
    );
    for (const setting of settings) {
      const sr = of.filter((r) => r.setting === setting);
      if (!sr.length) continue;
      const wall = sr.reduce((a, r) => a + r.seconds, 0) / sr.length;
      console.log(
        `| ${model} | ${attack} | ${setting} | ${sr.length} | ${meanStd(sr.map((r) => r.after.ca))} | ${meanStd(sr.map((r) => r.after.asr))} | ${meanStd(sr.map((r) => r.after.ra))} | ${meanStd(sr.map((r) => r.der))} | ${wall.toFixed(0)} |`,
      );
    }
  }
  const dates = rows.map((r) => r.date).sort();
  console.log(`\nRuns ${dates[0]?.slice(0, 10)} to ${dates[dates.length - 1]?.slice(0, 10)} on ${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}).`);
}

interface SpeedLine {
  case: string;
  ms_per_step?: number;
  seconds?: number;
  torch_best_ms?: number | null;
  torch_best_seconds?: number | null;
  torch_best_config?: string | null;
  ratio?: number | null;
  torch_default_ms?: number | null;
  ratio_default?: number | null;
  batch?: number;
}

function speed(files: string[]): void {
  const lines = files.flatMap((f) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as SpeedLine),
  );
  const cell = (v: number | null | undefined, digits = 0) => (v === null || v === undefined ? '-' : v.toFixed(digits));
  console.log('| case | batch | kwshield | PyTorch at its best | best config | ratio | PyTorch default | ratio to default |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const l of lines) {
    if (l.ms_per_step === undefined && l.seconds === undefined) continue; // summary lines (gnft_over_train)
    const unit = l.seconds !== undefined ? ' s' : ' ms';
    const ours = l.seconds ?? l.ms_per_step;
    const best = l.torch_best_seconds ?? l.torch_best_ms;
    const digits = l.seconds !== undefined ? 1 : 0;
    console.log(
      `| ${l.case} | ${l.batch ?? '-'} | ${cell(ours, digits)}${unit} | ${cell(best, digits)}${unit} | ${l.torch_best_config ?? '-'} | ${cell(l.ratio, 2)} | ${l.torch_default_ms ? `${cell(l.torch_default_ms)} ms` : '-'} | ${cell(l.ratio_default, 2)} |`,
    );
  }
}

interface SmokeLine {
  model: string;
  attack: string;
  ok: boolean;
  frontEnd?: string;
  seconds: number;
  backdoored?: { ca: number; asr: number };
}

/** One row per model, one column per attack: "ok" with the front-end and seconds, or FAILED. */
function gridSmoke(files: string[]): void {
  const lines = files.flatMap((f) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as SmokeLine),
  );
  const models = [...new Set(lines.map((l) => l.model))];
  const attackNames = [...new Set(lines.map((l) => l.attack))];
  console.log(`| model | ${attackNames.join(' | ')} |`);
  console.log(`|---|${attackNames.map(() => '---').join('|')}|`);
  for (const model of models) {
    const cells = attackNames.map((attack) => {
      const l = lines.find((x) => x.model === model && x.attack === attack);
      if (!l) return 'not run';
      return l.ok ? `ok (${l.frontEnd}, ${l.seconds} s)` : `FAILED (${l.seconds} s)`;
    });
    console.log(`| ${model} | ${cells.join(' | ')} |`);
  }
  const ok = lines.filter((l) => l.ok).length;
  console.log(`\n${ok} of ${lines.length} pairs ran end to end; ${lines.reduce((s, l) => s + l.seconds, 0)} s in all.`);
}

/** One row per setting, one column per clean ratio: what a defense costs, and buys, as the clean set grows. */
function cost(files: string[]): void {
  const unique = new Map(readRows(files).map((r) => [`${r.run}|${r.setting}|${r.seed}|${r.cleanRatio}`, r]));
  const rows = [...unique.values()];
  const ratios = [...new Set(rows.map((r) => r.cleanRatio))].sort((a, b) => a - b);
  const clips = ratios.map((q) => rows.find((r) => r.cleanRatio === q)?.cleanClips ?? 0);
  console.log(`| defense | ${ratios.map((q, i) => `${pct(q)}% (${clips[i]} clips): CA / ASR, s`).join(' | ')} | s at the largest / s at the smallest |`);
  console.log(`|---|${ratios.map(() => '---').join('|')}|---|`);
  for (const setting of [...new Set(rows.map((r) => r.setting))]) {
    const at = ratios.map((q) => rows.filter((r) => r.setting === setting && r.cleanRatio === q));
    const seconds = at.map((rs) => (rs.length ? rs.reduce((a, r) => a + r.seconds, 0) / rs.length : NaN));
    const cells = at.map((rs, i) =>
      rs.length ? `${meanStd(rs.map((r) => r.after.ca))} / ${meanStd(rs.map((r) => r.after.asr))}, ${seconds[i].toFixed(0)}` : 'n/a',
    );
    const known = seconds.filter(Number.isFinite);
    const growth = known.length > 1 && known[0] > 0 ? `${(known[known.length - 1] / known[0]).toFixed(1)}x` : 'n/a';
    console.log(`| ${setting} | ${cells.join(' | ')} | ${growth} |`);
  }
  const before = rows[0]?.before;
  if (before) console.log(`\nNo Defense: CA ${pct(before.ca)}, ASR ${pct(before.asr)} (${[...new Set(rows.map((r) => path.basename(r.run)))].join(', ')}).`);
}

const [kind, ...inputs] = process.argv.slice(2);
if (kind === 'attacks') attacks(inputs);
else if (kind === 'defenses') defenses(inputs);
else if (kind === 'defense-rows') defenseRows(inputs);
else if (kind === 'study') study(inputs);
else if (kind === 'speed') speed(inputs);
else if (kind === 'grid-smoke') gridSmoke(inputs);
else if (kind === 'cost') cost(inputs);
else {
  console.error(
    'usage: npx tsx scripts/tables.ts attacks RUN... | defenses RESULTS.jsonl... | defense-rows RESULTS.jsonl... [--settings a,b] [--attack-seeds 0] | study RESULTS.jsonl... | speed BENCH.jsonl... | grid-smoke SMOKE.jsonl | cost RESULTS.jsonl...',
  );
  process.exit(2);
}
