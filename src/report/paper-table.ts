// The HTML report's paper table, from jobs (experiments/aggregate.ts does the arithmetic): one row per model x attack (and attack
// configuration), one column group per defense setting, every cell a mean ± std over seeds, and the best
// defense per row and metric. The layout is the GN-FT paper's Table I (../papers/gn-ft-zhou-lin-liu.txt).
import { groupBy, lastPerKey, meanStd, type Stat } from '../experiments/aggregate.ts';
import type { Job, Metrics } from './job.ts';
import {
  attackName,
  compareAttacks,
  compareModels,
  compareSettings,
  type DefenseSetting,
  noDefenseKey,
  overridesLabel,
  settingKey,
  settingLabel,
} from './names.ts';

export type MetricName = 'asr' | 'ca' | 'ra' | 'der';

export type Cell = Partial<Record<MetricName, Stat>>;

export interface Column {
  /** noDefenseKey for the backdoored model, else settingKey() */
  key: string;
  label: string;
  setting?: DefenseSetting;
}

export interface Row {
  model: string;
  attack: string;
  /** how this row's attack configuration differs from the other rows of the same model and attack ('' when it does not) */
  variant: string;
  label: string;
  cells: Map<string, Cell>;
  /** attack jobs' clean model of the same configuration: CA and false-trigger rate (its ASR) */
  clean: Cell;
  /** per metric, the column keys holding the best defense value (lowest ASR; highest CA, RA, DER) */
  best: Partial<Record<MetricName, Set<string>>>;
  jobs: Job[];
}

export interface ModelBlock {
  model: string;
  rows: Row[];
  /** the mean over the rows of each cell's mean ('Average' in the paper); `partial` when some rows lack the column */
  average: Row & { partial: Set<string> };
}

export interface PaperTable {
  /** the data set's name and word selection */
  dataset: string;
  columns: Column[];
  blocks: ModelBlock[];
  /** the clean ratio of the defense jobs in the table (the paper's 5% when present) */
  cleanRatio?: number;
  /** defense jobs left out because they ran at another clean ratio (the clean-ratio figure shows them) */
  otherRatioJobs: number;
  /** the seed count most cells have */
  n: number;
}

export const lowerIsBetter: Record<MetricName, boolean> = { asr: true, ca: false, ra: false, der: false };

export function datasetKey(job: Job): string {
  return job.words ? `${job.dataName} (${job.words})` : job.dataName;
}

export function settingOf(job: Job): DefenseSetting {
  return { defense: job.defense ?? 'unknown', recipe: job.recipe, overrides: overridesLabel(job.options) };
}

/** The attack configuration a row stands for: what makes two backdoored models differ other than the seed. */
function attackConfig(job: Job): Record<string, unknown> {
  const options = Object.fromEntries(
    Object.keys(job.attackOptions ?? {})
      .sort()
      .map((k) => [`option:${k}`, job.attackOptions![k]]),
  );
  return { frontEnd: job.frontEnd, poisonRatio: job.poisonRatio, target: job.target, epochs: job.epochs, trainRecipe: job.trainRecipe, ...options };
}

const configKey = (job: Job) => JSON.stringify([job.model, job.attack ?? '', attackConfig(job)]);

const configNames: Record<string, string> = {
  frontEnd: 'front-end',
  poisonRatio: 'poison ratio',
  target: 'target',
  epochs: 'training epochs',
  trainRecipe: 'training recipe',
};

/** 'poison ratio=0.2, epochs=40': only the fields in which one configuration differs from the others of its model and attack. */
function variantLabel(config: Record<string, unknown>, others: Record<string, unknown>[]): string {
  const keys = [...new Set([config, ...others].flatMap((c) => Object.keys(c)))];
  return keys
    .filter((k) => others.some((o) => JSON.stringify(o[k]) !== JSON.stringify(config[k])))
    .filter((k) => config[k] !== undefined)
    .map((k) => `${configNames[k] ?? k.replace(/^option:/, '')}=${typeof config[k] === 'string' ? config[k] : JSON.stringify(config[k])}`)
    .join(', ');
}

/** The clean ratio the table shows: the paper's 5% when a job ran at it, else the most common one. */
export function mainCleanRatio(jobs: readonly Job[]): number | undefined {
  const ratios = jobs.flatMap((j) => (j.kind === 'defense' && j.cleanRatio !== undefined ? [j.cleanRatio] : []));
  if (ratios.length === 0) return undefined;
  if (ratios.includes(0.05)) return 0.05; // GN-FT paper, Sec. III-A: 5% of the clean data
  const counts = new Map<number, number>();
  for (const r of ratios) counts.set(r, (counts.get(r) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0][0];
}

function statsOf(metrics: readonly (Metrics | undefined)[], ders: readonly (number | undefined)[] = []): Cell {
  // NaN: a rate the writer could not measure (recorded as null); it is left out, not averaged in.
  const pick = (key: keyof Metrics) => meanStd(metrics.flatMap((m) => (m && Number.isFinite(m[key]) ? [m[key]] : [])));
  const cell: Cell = {};
  for (const key of ['asr', 'ca', 'ra'] as const) {
    const s = pick(key);
    if (s) cell[key] = s;
  }
  const der = meanStd(ders.flatMap((d) => (d === undefined ? [] : [d])));
  if (der) cell.der = der;
  return cell;
}

/** The No Defense cell: the attack jobs' backdoored models, or else the defense jobs' `before`, once per attack seed. */
function noDefenseCell(attackJobs: Job[], defenseJobs: Job[]): Cell {
  if (attackJobs.length) return statsOf(attackJobs.map((j) => j.metrics));
  const measured = defenseJobs.filter((j) => j.before);
  return statsOf(
    lastPerKey(
      measured,
      (j) => String(j.attackSeed ?? j.source),
      (j) => j.before,
    ),
  );
}

/** Values compare as displayed (percent, 1 decimal), so that ties look like ties. */
const shown = (x: number) => Math.round(x * 1000);

export function bestColumns(cells: Map<string, Cell>, metric: MetricName, candidates: readonly string[]): Set<string> {
  const values = candidates.flatMap((key) => {
    const s = cells.get(key)?.[metric];
    return s ? [{ key, v: shown(s.mean) }] : [];
  });
  if (values.length < 2) return new Set();
  const best = lowerIsBetter[metric] ? Math.min(...values.map((x) => x.v)) : Math.max(...values.map((x) => x.v));
  return new Set(values.filter((x) => x.v === best).map((x) => x.key));
}

function markBest(row: Pick<Row, 'cells' | 'best'>, columns: readonly Column[]): void {
  const defenses = columns.filter((c) => c.key !== noDefenseKey).map((c) => c.key);
  for (const metric of ['asr', 'ca', 'ra', 'der'] as const) row.best[metric] = bestColumns(row.cells, metric, defenses);
}

function averageRow(model: string, rows: Row[], columns: readonly Column[]): ModelBlock['average'] {
  const cells = new Map<string, Cell>();
  const partial = new Set<string>();
  for (const c of columns) {
    const cell: Cell = {};
    for (const metric of ['asr', 'ca', 'ra', 'der'] as const) {
      const means = rows.flatMap((r) => {
        const s = r.cells.get(c.key)?.[metric];
        return s ? [s.mean] : [];
      });
      const s = meanStd(means);
      if (!s) continue;
      // The paper's Average is the plain mean of the rows; its spread over attacks is not a seed spread,
      // so it has none, and n = 0 says it is not a mean over seeds.
      cell[metric] = { mean: s.mean, std: 0, n: 0 };
      if (means.length < rows.length) partial.add(c.key);
    }
    if (Object.keys(cell).length) cells.set(c.key, cell);
  }
  const average = { model, attack: '', variant: '', label: 'Average', cells, clean: {}, best: {}, jobs: [], partial };
  markBest(average, columns);
  return average;
}

/** The paper-layout table of one data set's jobs (failed jobs are left out). */
export function paperTable(dataset: string, allJobs: readonly Job[]): PaperTable {
  const jobs = allJobs.filter((j) => j.status === 'ok' && j.metrics && j.attack !== undefined && j.kind !== 'clean');
  const cleanRatio = mainCleanRatio(jobs);
  const inTable = (j: Job) => j.kind === 'attack' || j.cleanRatio === undefined || j.cleanRatio === cleanRatio;
  const otherRatioJobs = jobs.filter((j) => !inTable(j)).length;

  const settings = new Map<string, DefenseSetting>();
  for (const j of jobs) if (j.kind === 'defense' && inTable(j)) settings.set(settingKey(settingOf(j)), settingOf(j));
  const columns: Column[] = [
    { key: noDefenseKey, label: 'No Defense' },
    ...[...settings.values()].sort(compareSettings).map((s) => ({ key: settingKey(s), label: settingLabel(s), setting: s })),
  ];

  const groups = groupBy(jobs.filter(inTable), configKey);
  const rows: Row[] = [...groups.values()].map((group) => {
    const first = group[0];
    const siblings = [...groups.values()].filter((g) => g[0].model === first.model && g[0].attack === first.attack).map((g) => attackConfig(g[0]));
    const variant = variantLabel(attackConfig(first), siblings);
    const attackJobs = group.filter((j) => j.kind === 'attack');
    const defenseJobs = group.filter((j) => j.kind === 'defense');
    const cells = new Map<string, Cell>();
    const none = noDefenseCell(attackJobs, defenseJobs);
    if (Object.keys(none).length) cells.set(noDefenseKey, none);
    for (const c of columns.slice(1)) {
      const mine = defenseJobs.filter((j) => settingKey(settingOf(j)) === c.key);
      if (mine.length)
        cells.set(
          c.key,
          statsOf(
            mine.map((j) => j.metrics),
            mine.map((j) => j.der),
          ),
        );
    }
    const clean = statsOf(attackJobs.map((j) => j.clean));
    const label = attackName(first.attack) + (variant ? ` (${variant})` : '');
    const row: Row = { model: first.model, attack: first.attack ?? '', variant, label, cells, clean, best: {}, jobs: group };
    markBest(row, columns);
    return row;
  });
  rows.sort((a, b) => compareModels(a.model, b.model) || compareAttacks(a.attack, b.attack) || (a.variant < b.variant ? -1 : a.variant > b.variant ? 1 : 0));

  const blocks: ModelBlock[] = [];
  for (const row of rows) {
    const block = blocks.at(-1)?.model === row.model ? blocks.at(-1) : undefined;
    if (block) block.rows.push(row);
    else blocks.push({ model: row.model, rows: [row], average: undefined as never });
  }
  for (const b of blocks) b.average = averageRow(b.model, b.rows, columns);

  const ns = rows.flatMap((r) => [...r.cells.values()].flatMap((c) => (c.asr ? [c.asr.n] : [])));
  return { dataset, columns, blocks, cleanRatio, otherRatioJobs, n: mostCommon(ns) ?? 1 };
}

function mostCommon(xs: readonly number[]): number | undefined {
  const counts = new Map<number, number>();
  for (const x of xs) counts.set(x, (counts.get(x) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0];
}

/** One table per data set, in name order. */
export function paperTables(jobs: readonly Job[]): PaperTable[] {
  const byData = groupBy(jobs, datasetKey);
  return [...byData.keys()]
    .sort()
    .map((d) => paperTable(d, byData.get(d) ?? []))
    .filter((t) => t.blocks.length > 0);
}
