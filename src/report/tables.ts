// The paper-layout tables as HTML: Table I of the GN-FT paper (rows model x attack with an Average row
// per model; column groups No Defense | defense ...; ASR and CA in each), and a second table with RA and
// DER beside the clean model's CA and false-trigger rate. Bold marks the best defense per row.
import type { Stat } from '../experiments/aggregate.ts';
import { html, type Raw } from './escape.ts';
import { modelName, noDefenseKey, pct } from './names.ts';
import type { Cell, Column, MetricName, PaperTable, Row } from './paper-table.ts';

/** '98.8 ± 0.5' (percent), or '98.8' for one seed; a small n when it is not the table's n (n = 0: an Average, no seeds). */
export function formatStat(s: Stat | undefined, tableN: number): Raw {
  if (!s) return html`<span class="na" title="no job">–</span>`;
  return html`${pct(s.mean)}${s.n > 1 ? html`<span class="sd"> ± ${pct(s.std)}</span>` : ''}${s.n > 0 && s.n !== tableN ? html`<span class="n"> n=${s.n}</span>` : ''}`;
}

interface Metric {
  key: MetricName;
  label: string;
  title: string;
}

const asr: Metric = { key: 'asr', label: 'ASR ↓', title: 'attack success rate: triggered non-target clips classified as the target (lower is better)' };
const ca: Metric = { key: 'ca', label: 'CA ↑', title: 'clean accuracy on the clean test split (higher is better)' };
const ra: Metric = { key: 'ra', label: 'RA ↑', title: 'robust accuracy: triggered clips still classified as their true word (higher is better)' };
const der: Metric = {
  key: 'der',
  label: 'DER ↑',
  title: 'defense effectiveness rating, (max(0, ΔASR) − max(0, ΔCA) + 1) / 2: 1 = ASR gone at no cost in CA (higher is better)',
};

function valueCell(row: Row, column: Column, metric: Metric, n: number, partial?: Set<string>): Raw {
  const s = row.cells.get(column.key)?.[metric.key];
  const best = row.best[metric.key]?.has(column.key);
  const mark = partial?.has(column.key) ? html`<sup title="averaged over the attacks that have this column">†</sup>` : '';
  return html`<td class="num${best ? ' best' : ''}">${best ? html`<b>${formatStat(s, n)}</b>` : formatStat(s, n)}${mark}</td>`;
}

function header(groups: { label: string; metrics: Metric[] }[]): Raw {
  return html`<thead>
<tr><th rowspan="2" scope="col">Model</th><th rowspan="2" scope="col">Backdoor attack</th>${groups.map(
    (g) => html`<th colspan="${g.metrics.length}" scope="colgroup" class="group">${g.label}</th>`,
  )}</tr>
<tr>${groups.map((g) => g.metrics.map((m, i) => html`<th scope="col" class="${i === 0 ? 'first' : ''}" title="${m.title}">${m.label}</th>`))}</tr>
</thead>`;
}

function body(table: PaperTable, cellsOf: (row: Row, partial?: Set<string>) => Raw[]): Raw {
  return html`<tbody>${table.blocks.map(
    (
      block,
    ) => html`<tr class="block-start"><th rowspan="${block.rows.length + 1}" scope="rowgroup" class="model">${modelName(block.model)}</th>${block.rows.map(
      (row, i) => html`${i > 0 ? html`<tr>` : ''}<th scope="row" class="attack">${row.label}</th>${cellsOf(row)}</tr>
`,
    )}<tr class="average"><th scope="row" class="attack">Average</th>${cellsOf(block.average, block.average.partial)}</tr>
`,
  )}</tbody>`;
}

function caption(table: PaperTable, what: string): string {
  const seeds = table.n > 1 ? `mean ± std over n = ${table.n} seeds (a cell with another n says so)` : 'one seed per cell (n = 1) unless a cell says otherwise';
  const ratio = table.cleanRatio === undefined ? '' : `; defenses with ${pct(table.cleanRatio, 0)}% of the clean training data`;
  return `${what} on ${table.dataset} (%): ${seeds}${ratio}.`;
}

/** Table I of the paper: ASR and CA per model x attack and defense, best defense per row in bold. */
export function caAsrTable(table: PaperTable, number: number): Raw {
  const groups = table.columns.map((c) => ({ label: c.label, metrics: [asr, ca] }));
  const cells = (row: Row, partial?: Set<string>) =>
    table.columns.flatMap((c) => [valueCell(row, c, asr, table.n, partial), valueCell(row, c, ca, table.n, partial)]);
  const note = table.otherRatioJobs
    ? html` ${table.otherRatioJobs} defense job(s) at other clean ratios are not in this table; the clean-ratio figure shows them.`
    : '';
  return html`<figure class="table" id="table-${number}">
<figcaption><span class="label">Table ${number}.</span> ${caption(table, 'Attack success rate (ASR) and clean accuracy (CA)')} Bold: the best defense in the row (lowest ASR, highest CA). Average: the mean of the rows above it.${note}</figcaption>
<div class="table-wrap"><table class="paper">
${header(groups)}
${body(table, cells)}
</table></div></figure>`;
}

/** RA and DER per defense, beside the clean model (CA, false-trigger rate) and the backdoored model's RA. */
export function raDerTable(table: PaperTable, number: number): Raw {
  const ftr: Metric = { key: 'asr', label: 'FTR ↓', title: "the clean model's false-trigger rate: triggered clips it classifies as the target" };
  const groups = [
    { label: 'Clean model', metrics: [ca, ftr] },
    ...table.columns.map((c) => ({ label: c.label, metrics: c.key === noDefenseKey ? [ra] : [ra, der] })),
  ];
  const cleanCell = (row: Row, metric: Metric) => {
    const s = (row.clean as Cell)[metric.key];
    return html`<td class="num">${formatStat(s, table.n)}</td>`;
  };
  const cells = (row: Row, partial?: Set<string>) => [
    ...(row.label === 'Average' ? [html`<td class="num"></td>`, html`<td class="num"></td>`] : [cleanCell(row, ca), cleanCell(row, ftr)]),
    ...table.columns.flatMap((c) =>
      c.key === noDefenseKey ? [valueCell(row, c, ra, table.n, partial)] : [valueCell(row, c, ra, table.n, partial), valueCell(row, c, der, table.n, partial)],
    ),
  ];
  return html`<figure class="table" id="table-${number}">
<figcaption><span class="label">Table ${number}.</span> ${caption(table, 'Robust accuracy (RA) and defense effectiveness rating (DER)')} Clean model: the model trained on unpoisoned data with the same configuration (its FTR is the ASR it shows without a backdoor). Bold: the best defense in the row (highest RA, highest DER).</figcaption>
<div class="table-wrap"><table class="paper">
${header(groups)}
${body(table, cells)}
</table></div></figure>`;
}
