// The report's figures as Vega-Lite specs: pure functions from data to spec, each with a title and a
// caption that says what it shows and how to read it. A figure whose data is missing is a MissingFigure
// that says what would show it and how to make that. This file: the figure types, the shared palettes,
// and the figures of jobs (CA vs ASR, clean ratio, training curves); analysis-figures.ts and
// example-figures.ts hold the others.

import type { Zone } from '../analysis/analysis-file.ts';
import { meanStd } from '../experiments/aggregate.ts';
import type { Job } from './job.ts';
import { attackName, compareAttacks, compareModels, compareSettings, type DefenseSetting, modelName, settingKey, settingLabel } from './names.ts';
import { datasetKey, mainCleanRatio, settingOf } from './paper-table.ts';
import type { DefenseCurve } from './run-folder.ts';

export type VlSpec = Record<string, unknown>;

export interface Figure {
  slug: string;
  title: string;
  caption: string;
  spec: VlSpec;
}

export interface MissingFigure {
  slug: string;
  title: string;
  /** what would show the figure and how to make it */
  missing: string;
}

export type FigureOrMissing = Figure | MissingFigure;

export const isMissing = (f: FigureOrMissing): f is MissingFigure => 'missing' in f;

const noDefenseColour = '#d62728';
// Thirteen after No Defense's red, so the demo's ten defense settings never share a colour.
export const defenseColours = [
  '#1f77b4',
  '#2ca02c',
  '#9467bd',
  '#ff7f0e',
  '#17becf',
  '#8c564b',
  '#e377c2',
  '#bcbd22',
  '#7f7f7f',
  '#393b79',
  '#637939',
  '#8c6d31',
  '#7b4173',
];
const shapes = ['circle', 'square', 'triangle-up', 'diamond', 'cross', 'triangle-down', 'triangle-right', 'triangle-left'];
export const classColours = [
  '#4c78a8',
  '#f58518',
  '#54a24b',
  '#e45756',
  '#72b7b2',
  '#eeca3b',
  '#b279a2',
  '#ff9da6',
  '#9d755d',
  '#bab0ac',
  '#9ecae9',
  '#ffbf79',
  '#88d27a',
  '#ff9d98',
  '#83bcb6',
  '#f2cf5b',
  '#d6a5c9',
  '#fcbfd2',
  '#d8b5a5',
  '#439894',
];
export const zoneColours: Record<Zone, string> = { clean: '#2ca02c', backdoor: '#d62728', hybrid: '#ff7f0e', redundant: '#8c8c8c' };
export const zoneOrder: Zone[] = ['clean', 'backdoor', 'hybrid', 'redundant'];

export const percent = (x: number) => Math.round(1000 * x) / 10;
export const pick = <T>(list: readonly T[], i: number) => list[i % list.length];

/** The panel a job's points go into: its model, with the data set when there are several. */
function panelOf(job: Job, manyData: boolean): string {
  return manyData ? `${modelName(job.model)} · ${datasetKey(job)}` : modelName(job.model);
}

function settingsOf(jobs: readonly Job[]): DefenseSetting[] {
  const byKey = new Map<string, DefenseSetting>();
  for (const j of jobs) if (j.kind === 'defense') byKey.set(settingKey(settingOf(j)), settingOf(j));
  return [...byKey.values()].sort(compareSettings);
}

function sortedAttacks(jobs: readonly Job[]): string[] {
  return [...new Set(jobs.flatMap((j) => (j.attack ? [j.attack] : [])))].sort(compareAttacks);
}

/** Round ticks from lo to hi (both multiples of 5), about six of them. */
function ticksBetween(lo: number, hi: number): number[] {
  const step = [1, 2, 5, 10, 20].find((s) => (hi - lo) / s <= 7) ?? 25;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) out.push(t);
  return out;
}

/** CA against ASR, one point per job (the backdoored models too), grey lines from a backdoored model to its defended self. */
export function caAsrScatter(allJobs: readonly Job[]): FigureOrMissing {
  const slug = 'ca-vs-asr';
  const title = 'Clean accuracy against attack success rate';
  const measured = (m: Job['metrics']) => m !== undefined && Number.isFinite(m.asr) && Number.isFinite(m.ca);
  // Defense jobs at the table's clean ratio only (per data set); the clean-ratio figure has the others.
  const mainRatio = new Map([...new Set(allJobs.map(datasetKey))].map((d) => [d, mainCleanRatio(allJobs.filter((j) => datasetKey(j) === d))]));
  const atMainRatio = (j: Job) => j.kind !== 'defense' || j.cleanRatio === undefined || j.cleanRatio === mainRatio.get(datasetKey(j));
  const jobs = allJobs.filter((j) => j.status === 'ok' && measured(j.metrics) && j.attack && j.kind !== 'clean' && atMainRatio(j));
  const otherRatios = allJobs.filter((j) => j.status === 'ok' && j.kind === 'defense' && !atMainRatio(j)).length;
  if (jobs.length === 0) {
    return {
      slug,
      title,
      missing:
        'No finished attack or defense job with CA and ASR was found. Run `kwshield attack` (and `kwshield defend`) or a grid, and report its results folder.',
    };
  }
  const manyData = new Set(jobs.map(datasetKey)).size > 1;
  const settings = settingsOf(jobs);
  const defenseDomain = ['No Defense', ...settings.map(settingLabel)];
  const attacks = sortedAttacks(jobs);
  const attackDomain = attacks.map(attackName);
  const rows: Record<string, unknown>[] = [];
  const rowKey = (j: Job) => JSON.stringify([datasetKey(j), j.model, j.attack]);
  const attackSeedKey = (j: Job) => JSON.stringify([datasetKey(j), j.model, j.attack, j.attackSeed ?? j.seed]);
  const haveAttackJob = new Set(jobs.filter((j) => j.kind === 'attack').map(attackSeedKey));
  const beforePoints = new Set<string>();
  // Mean backdoored (ASR, CA) per model x attack, and mean defended per model x attack x setting: the grey lines.
  const before = new Map<string, { asr: number[]; ca: number[]; panel: string }>();
  const after = new Map<string, { asr: number[]; ca: number[]; row: string; panel: string }>();
  const addBefore = (j: Job, m: NonNullable<Job['metrics']>) => {
    const b = before.get(rowKey(j)) ?? { asr: [], ca: [], panel: panelOf(j, manyData) };
    b.asr.push(m.asr);
    b.ca.push(m.ca);
    before.set(rowKey(j), b);
  };
  for (const j of jobs) {
    const panel = panelOf(j, manyData);
    const defense = j.kind === 'attack' ? 'No Defense' : settingLabel(settingOf(j));
    rows.push({ kind: 'point', panel, defense, attack: attackName(j.attack), asr: percent(j.metrics!.asr), ca: percent(j.metrics!.ca) });
    if (j.kind === 'attack') addBefore(j, j.metrics!);
    if (j.kind === 'defense') {
      const key = `${rowKey(j)}|${settingKey(settingOf(j))}`;
      const a = after.get(key) ?? { asr: [], ca: [], row: rowKey(j), panel };
      a.asr.push(j.metrics!.asr);
      a.ca.push(j.metrics!.ca);
      after.set(key, a);
    }
    // Without the attack job, the defense job's own `before` is the No Defense point (once per backdoored model).
    if (j.kind === 'defense' && j.before && measured(j.before) && !haveAttackJob.has(attackSeedKey(j)) && !beforePoints.has(attackSeedKey(j))) {
      beforePoints.add(attackSeedKey(j));
      addBefore(j, j.before);
      rows.push({ kind: 'point', panel, defense: 'No Defense', attack: attackName(j.attack), asr: percent(j.before.asr), ca: percent(j.before.ca) });
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  for (const a of after.values()) {
    const b = before.get(a.row);
    if (b)
      rows.push({ kind: 'link', panel: a.panel, asr: percent(mean(b.asr)), ca: percent(mean(b.ca)), asr2: percent(mean(a.asr)), ca2: percent(mean(a.ca)) });
  }
  const panels = [...new Set(jobs.map((j) => j.model))].sort(compareModels);
  const panelSort = [...new Set(panels.flatMap((m) => jobs.filter((j) => j.model === m).map((j) => panelOf(j, manyData))))];
  // A little room beyond 0 and 100% keeps points on the edge inside the frame; no tick goes past 100%.
  const x = {
    field: 'asr',
    type: 'quantitative',
    title: 'ASR (%), lower is better',
    scale: { domain: [-3, 103], nice: false },
    axis: { values: [0, 20, 40, 60, 80, 100] },
  };
  // Each panel's CA range from its own points: models (and data sets) can sit at very different accuracies.
  const yOf = (panel: string) => {
    const cas = rows.filter((r) => r.panel === panel).flatMap((r) => [r.ca as number, ...(r.ca2 === undefined ? [] : [r.ca2 as number])]);
    const caLow = Math.max(0, Math.floor((Math.min(...cas) - 3) / 5) * 5);
    return {
      field: 'ca',
      type: 'quantitative',
      title: 'CA (%), higher is better',
      scale: { domain: [caLow, 100 + 0.03 * (100 - caLow)], nice: false },
      axis: { values: ticksBetween(caLow, 100) },
    };
  };
  const layersOf = (y: Record<string, unknown>) => [
    {
      transform: [{ filter: "datum.kind === 'link'" }],
      mark: { type: 'rule', color: '#9a9a9a', strokeWidth: 1.2, strokeDash: [3, 2] },
      encoding: { x, y, x2: { field: 'asr2' }, y2: { field: 'ca2' } },
    },
    {
      transform: [{ filter: "datum.kind === 'point'" }],
      mark: { type: 'point', filled: true, size: 80, opacity: 0.9, stroke: 'white', strokeWidth: 0.6 },
      encoding: {
        x,
        y,
        color: {
          field: 'defense',
          type: 'nominal',
          title: 'defense',
          scale: { domain: defenseDomain, range: [noDefenseColour, ...defenseDomain.slice(1).map((_, i) => pick(defenseColours, i))] },
          legend: { orient: 'right', labelLimit: 360 },
        },
        shape: { field: 'attack', type: 'nominal', title: 'attack', scale: { domain: attackDomain, range: attackDomain.map((_, i) => pick(shapes, i)) } },
      },
    },
  ];
  const chart = (panel: string) => ({
    width: 420,
    height: 320,
    title: { text: panel, anchor: 'middle', fontWeight: 'normal' },
    transform: [{ filter: { field: 'panel', equal: panel } }],
    layer: layersOf(yOf(panel)),
  });
  const spec =
    panelSort.length > 1
      ? { data: { values: rows }, hconcat: panelSort.map(chart), resolve: { scale: { y: 'independent', color: 'shared', shape: 'shared' } } }
      : { data: { values: rows }, ...chart(panelSort[0]) };
  return {
    slug,
    title,
    caption: `Each point is one job: x is its attack success rate, y its clean accuracy on the test split; colour is the defense (red: the backdoored model without defense), shape the attack. A dashed grey line joins the mean backdoored model of a model x attack to its mean after each defense. A good defense moves a point to the top left: ASR near 0 with the CA kept.${
      otherRatios ? ` Defense jobs at other clean-data ratios (${otherRatios}) are left out here; the clean-ratio figure shows them.` : ''
    }`,
    spec: { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', ...spec },
  };
}

/** ASR and CA against the defender's clean-data ratio, for the defense settings run at several ratios (the paper's Table IV). */
export function cleanRatioCurve(allJobs: readonly Job[]): FigureOrMissing {
  const slug = 'clean-ratio';
  const title = 'Defense against the clean-data ratio';
  const jobs = allJobs.filter(
    (j) =>
      j.status === 'ok' && j.kind === 'defense' && j.metrics && Number.isFinite(j.metrics.asr) && Number.isFinite(j.metrics.ca) && j.cleanRatio !== undefined,
  );
  const groupKey = (j: Job) => JSON.stringify([datasetKey(j), j.model, j.attack, settingKey(settingOf(j))]);
  const groups = new Map<string, Job[]>();
  for (const j of jobs) groups.set(groupKey(j), [...(groups.get(groupKey(j)) ?? []), j]);
  const varying = [...groups.values()].filter((g) => new Set(g.map((j) => j.cleanRatio)).size > 1);
  if (varying.length === 0) {
    return {
      slug,
      title,
      missing:
        'No defense setting was run at more than one clean-data ratio. Run the same defense with several ratios (the paper uses 2, 5, 10, 20 and 40%), e.g. `kwshield defend --model RUN --attack-of RUN --defense gnft --clean-ratio 0.1 --out DIR` for each, or a grid whose defense jobs list several cleanRatio values.',
    };
  }
  const manyModels = new Set(varying.map((g) => g[0].model)).size > 1;
  const manySettings = new Set(varying.map((g) => settingKey(settingOf(g[0])))).size > 1;
  const rows: Record<string, unknown>[] = [];
  const ratios = new Set<number>();
  for (const g of varying) {
    const j0 = g[0];
    const series = `${manyModels ? `${modelName(j0.model)} · ` : ''}${attackName(j0.attack)}`;
    for (const ratio of [...new Set(g.map((j) => j.cleanRatio!))].sort((a, b) => a - b)) {
      ratios.add(percent(ratio));
      const at = g.filter((j) => j.cleanRatio === ratio);
      for (const metric of ['asr', 'ca'] as const) {
        const s = meanStd(at.map((j) => j.metrics![metric]))!;
        rows.push({
          metric,
          series,
          setting: settingLabel(settingOf(j0)),
          ratio: percent(ratio),
          mean: percent(s.mean),
          lo: percent(s.mean - s.std),
          hi: percent(s.mean + s.std),
          n: s.n,
        });
      }
    }
  }
  const seriesDomain = [...new Set(rows.map((r) => r.series as string))];
  const panel = (metric: 'asr' | 'ca', label: string) => {
    const x = {
      field: 'ratio',
      type: 'quantitative',
      title: 'clean data (% of the training split, log scale)',
      scale: { type: 'log', domain: [Math.min(...ratios) / 1.25, Math.max(...ratios) * 1.25] },
      axis: { values: [...ratios].sort((a, b) => a - b), format: '~g' },
    };
    const y = { field: 'mean', type: 'quantitative', title: `${label} (%)`, scale: { domain: [0, 100] } };
    const color = { field: 'series', type: 'nominal', title: manyModels ? 'model · attack' : 'attack', scale: { domain: seriesDomain } };
    const dash = manySettings ? { strokeDash: { field: 'setting', type: 'nominal', title: 'defense' } } : {};
    return {
      width: 300,
      height: 220,
      title: manySettings ? `${label} after the defense` : `${label} after ${settingLabel(settingOf(varying[0][0]))}`,
      transform: [{ filter: `datum.metric === '${metric}'` }],
      layer: [
        { mark: { type: 'rule', strokeWidth: 1.5 }, encoding: { x, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' }, color } },
        { mark: { type: 'line', strokeWidth: 2 }, encoding: { x, y, color, ...dash } },
        { mark: { type: 'point', filled: true, size: 50 }, encoding: { x, y, color } },
      ],
    };
  };
  return {
    slug,
    title,
    caption:
      "ASR (left) and CA (right) of the defended models against the share of the clean training data the defender had; points are means over seeds, vertical bars ± 1 std. The paper's Table IV: more clean data should mean a lower ASR and a higher CA.",
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      data: { values: rows },
      hconcat: [panel('asr', 'ASR'), panel('ca', 'CA')],
      resolve: { scale: { color: 'shared', strokeDash: 'shared' } },
    },
  };
}

/** Training loss and clean hold-out accuracy per epoch of each defense run, one row per model x attack. */
export function trainingCurves(curves: readonly DefenseCurve[], maxGroups = 6, maxSeries = 8): FigureOrMissing {
  const slug = 'training-curves';
  const title = 'Defense training curves';
  const withPoints = curves.filter((c) => c.points.length > 0);
  if (withPoints.length === 0) {
    return {
      slug,
      title,
      missing:
        'No defense run folder with per-epoch records was found. Give a defense run folder (from `kwshield defend --model RUN --attack-of RUN --defense gnft --out DIR`) as an input, or result files whose runs.model points at one.',
    };
  }
  const groupOf = (c: DefenseCurve) => `${modelName(c.job.model)} · ${attackName(c.job.attack)}`;
  const groups = new Map<string, DefenseCurve[]>();
  const sorted = [...withPoints].sort(
    (a, b) =>
      compareModels(a.job.model, b.job.model) ||
      compareAttacks(a.job.attack ?? '', b.job.attack ?? '') ||
      compareSettings(settingOf(a.job), settingOf(b.job)) ||
      a.job.seed - b.job.seed,
  );
  for (const c of sorted) groups.set(groupOf(c), [...(groups.get(groupOf(c)) ?? []), c]);
  const shown = [...groups.entries()].slice(0, maxGroups);
  const rows: Record<string, unknown>[] = [];
  const seriesNames: string[] = [];
  for (const [group, list] of shown) {
    const manySeeds = new Set(list.map((c) => settingKey(settingOf(c.job)))).size < list.length;
    for (const c of list.slice(0, maxSeries)) {
      const phases = new Set(c.points.map((p) => p.phase)).size > 1;
      const base = `${settingLabel(settingOf(c.job))}${manySeeds ? ` · seed ${c.job.seed}` : ''}`;
      const seriesOf = (phase: string) => (phases ? `${base} · ${phase}` : base);
      // Epoch 0: the model before the defense, drawn as the start of the first phase's line.
      if (c.holdoutBefore !== undefined) rows.push({ group, series: seriesOf(c.points[0].phase), epoch: 0, accuracy: percent(c.holdoutBefore) });
      c.points.forEach((p, i) => {
        const series = seriesOf(p.phase);
        if (!seriesNames.includes(series)) seriesNames.push(series);
        rows.push({ group, series, epoch: i + 1, loss: p.loss, accuracy: percent(p.holdoutAccuracy) });
      });
    }
  }
  const epochs = Math.max(...rows.map((r) => r.epoch as number));
  const x = { field: 'epoch', type: 'quantitative', title: 'epoch', scale: { domain: [0, Math.max(1, epochs)] }, axis: { tickMinStep: 1, format: 'd' } };
  const color = {
    field: 'series',
    type: 'nominal',
    title: 'defense',
    scale: { domain: seriesNames, range: seriesNames.map((_, i) => pick(defenseColours, i)) },
  };
  const panel = (group: string, field: 'loss' | 'accuracy') => ({
    width: 280,
    height: 180,
    title: field === 'loss' ? `${group}: training loss` : `${group}: clean hold-out accuracy`,
    transform: [{ filter: { field: 'group', equal: group } }, { filter: `isValid(datum.${field})` }],
    mark: { type: 'line', point: { filled: true, size: 30 }, strokeWidth: 2 },
    encoding: {
      x,
      y:
        field === 'loss'
          ? { field, type: 'quantitative', title: 'loss per clip (nats)', scale: { zero: false } }
          : { field, type: 'quantitative', title: 'hold-out accuracy (%)', scale: { domain: [0, 100] } },
      color,
    },
  });
  const truncated = groups.size > maxGroups ? ` Only the first ${maxGroups} of ${groups.size} model x attack pairs are drawn.` : '';
  return {
    slug,
    title,
    caption: `Per epoch of each defense run: the training loss on the defender's clean clips (left; for GN-FT it includes the gradient-norm penalty) and the accuracy on the clean hold-out clips the defense keeps aside (right; epoch 0 is the model before the defense). The hold-out accuracy is all a defender can see; a falling ASR does not show here.${truncated}`,
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      data: { values: rows },
      vconcat: shown.map(([group]) => ({ hconcat: [panel(group, 'loss'), panel(group, 'accuracy')] })),
      resolve: { scale: { color: 'shared' } },
    },
  };
}
