// Tables of indexed results: the paper's layout (a row per model x attack, a column group per defense
// setting with ASR and CA as mean ± std over seeds and their count n, No Defense from the attack jobs,
// and an Average row per model as in GN-FT Tables I and II), or one row per job; as text, CSV or JSON.
import { finiteMeanStd, groupBy, meanStdText, percentText, type Stat } from '../aggregate.ts';
import type { Row } from './store.ts';

export interface PaperCell {
  asr: Stat;
  ca: Stat;
  n: number;
}

export interface PaperRow {
  /** what identifies the row: model, attack, and any other attack setting that varies in the selection */
  key: Record<string, string | number | null>;
  label: string[];
  /** average over the rows of a model */
  average?: boolean;
  cells: Record<string, PaperCell>;
}

export interface PaperTable {
  layout: 'paper';
  /** the row key's columns */
  keyColumns: string[];
  /** column groups: 'No Defense', then defense settings (and clean ratios, when several are selected) */
  groups: string[];
  rows: PaperRow[];
}

/** Columns that, besides model and attack, tell backdoored models apart (shown only when they vary). */
const ATTACK_KEY = ['dataName', 'model', 'attack', 'attackOptions', 'frontEnd', 'poisonRatio', 'target', 'epochs', 'trainRecipe', 'synth'];

export const NO_DEFENSE = 'No Defense';

export function paperTable(rows: readonly Row[]): PaperTable {
  const ok = rows.filter((r) => r.status === 'ok' && (r.kind === 'attack' || r.kind === 'defense'));
  const varies = (c: string) => new Set(ok.map((r) => JSON.stringify(r[c] ?? null))).size > 1;
  const keyColumns = ATTACK_KEY.filter((c) => c === 'model' || c === 'attack' || varies(c));
  const ratios = new Set(ok.filter((r) => r.kind === 'defense').map((r) => r.cleanRatio));
  const groupOf = (r: Row) => (r.kind === 'attack' ? NO_DEFENSE : ratios.size > 1 ? `${r.setting} @${r.cleanRatio}` : String(r.setting));
  const settings = [...new Set(ok.filter((r) => r.kind === 'defense').map(groupOf))].sort((a, b) => {
    // Settings in name order; clean ratios in numeric order.
    const [sa, ra] = a.split(' @');
    const [sb, rb] = b.split(' @');
    return sa === sb ? Number(ra) - Number(rb) : sa < sb ? -1 : 1;
  });
  const groups = [NO_DEFENSE, ...settings];
  const keyOf = (r: Row) => JSON.stringify(keyColumns.map((c) => r[c] ?? null));
  const byKey = groupBy(ok, keyOf);
  const out: PaperRow[] = [];
  const cellOf = (members: Row[]): PaperCell => ({
    asr: finiteMeanStd(members.map((r) => r.asr as number)),
    ca: finiteMeanStd(members.map((r) => r.ca as number)),
    n: members.length,
  });
  const models = [...new Set([...byKey.values()].map((rs) => rs[0].model))];
  for (const model of models) {
    const modelRows: PaperRow[] = [];
    for (const members of byKey.values()) {
      if (members[0].model !== model) continue;
      const cells: Record<string, PaperCell> = {};
      for (const g of groups) {
        const inGroup = members.filter((r) => groupOf(r) === g);
        if (inGroup.length) cells[g] = cellOf(inGroup);
      }
      const key = Object.fromEntries(keyColumns.map((c) => [c, members[0][c] ?? null]));
      modelRows.push({ key, label: keyColumns.map((c) => String(members[0][c] ?? '')), cells });
    }
    out.push(...modelRows);
    if (modelRows.length > 1) {
      // The paper's Average row: the mean over the attacks of each cell's mean (n: how many rows).
      const cells: Record<string, PaperCell> = {};
      for (const g of groups) {
        const with_ = modelRows.filter((r) => r.cells[g]);
        if (!with_.length) continue;
        cells[g] = { asr: finiteMeanStd(with_.map((r) => r.cells[g].asr.mean)), ca: finiteMeanStd(with_.map((r) => r.cells[g].ca.mean)), n: with_.length };
      }
      out.push({
        key: { model, attack: 'Average' },
        label: keyColumns.map((c) => (c === 'model' ? String(model) : c === 'attack' ? 'Average' : '')),
        average: true,
        cells,
      });
    }
  }
  return { layout: 'paper', keyColumns, groups, rows: out };
}

const meanStd = (s: Stat | undefined) => meanStdText(s, '-');

function aligned(header: string[][], body: string[][], rightFrom: number, minWidths: number[] = []): string {
  const all = [...header, ...body];
  const widths = all[0].map((_, i) => Math.max(minWidths[i] ?? 0, ...all.map((r) => [...(r[i] ?? '')].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i >= rightFrom ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [...header.map(line), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** The paper table as aligned text: percentages, mean ± std, n per group; group names over their columns. */
export function paperText(t: PaperTable): string {
  const k = t.keyColumns.length;
  const sub = [...t.keyColumns, ...t.groups.flatMap(() => ['ASR ↓', 'CA ↑', 'n'])];
  const body = t.rows.map((r) => [
    ...r.label,
    ...t.groups.flatMap((g) => [meanStd(r.cells[g]?.asr), meanStd(r.cells[g]?.ca), r.cells[g] ? String(r.cells[g].n) : '']),
  ]);
  const widths = sub.map((_, i) => Math.max(...[sub, ...body].map((r) => [...(r[i] ?? '')].length)));
  // A group's name spans its three columns: widen its last column when the name is longer.
  t.groups.forEach((g, gi) => {
    const first = k + 3 * gi;
    const span = widths[first] + widths[first + 1] + widths[first + 2] + 4;
    if ([...g].length + 2 > span) widths[first + 2] += [...g].length + 2 - span;
  });
  let groupLine = '';
  let x = 0;
  for (let i = 0; i < sub.length; i++) {
    if (i >= k && (i - k) % 3 === 0) groupLine = `${groupLine.padEnd(x)}${t.groups[(i - k) / 3]}`;
    x += widths[i] + 2;
  }
  return `${groupLine.trimEnd()}\n${aligned([sub], body, k, widths)}\n(ASR and CA in %, mean ± std over seeds; n: results per cell, for Average rows the attacks averaged)`;
}

const csvCell = (v: unknown) => {
  const s = v === null || v === undefined ? '' : typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** The paper table as CSV: fractions (not percent), mean and std in separate columns. */
export function paperCsv(t: PaperTable): string {
  const header = [...t.keyColumns, ...t.groups.flatMap((g) => [`${g} ASR mean`, `${g} ASR std`, `${g} CA mean`, `${g} CA std`, `${g} n`])];
  const lines = t.rows.map((r): (string | number)[] => [
    ...r.label,
    ...t.groups.flatMap((g): (string | number)[] => {
      const c = r.cells[g];
      return c ? [c.asr.mean, c.asr.std, c.ca.mean, c.ca.std, c.n] : ['', '', '', '', ''];
    }),
  ]);
  return [header, ...lines].map((l) => l.map(csvCell).join(',')).join('\n');
}

/** The columns shown for one row per job on a terminal (CSV and JSON carry them all). */
export const ROW_COLUMNS = [
  'id',
  'status',
  'kind',
  'dataName',
  'model',
  'attack',
  'attackSeed',
  'setting',
  'cleanRatio',
  'seed',
  'ca',
  'asr',
  'ra',
  'beforeAsr',
  'der',
  'seconds',
];

export function rowsText(rows: readonly Row[]): string {
  const percentColumns = new Set(['ca', 'asr', 'ra', 'beforeAsr']);
  const body = rows.map((r) =>
    ROW_COLUMNS.map((c) => {
      const v = r[c];
      if (v === null || v === undefined) return '';
      if (percentColumns.has(c) && typeof v === 'number') return percentText(v);
      if (c === 'der' && typeof v === 'number') return v.toFixed(3);
      if (c === 'seconds' && typeof v === 'number') return v.toFixed(0);
      return String(v);
    }),
  );
  return `${aligned([ROW_COLUMNS], body, 99)}\n${rows.length} result${rows.length === 1 ? '' : 's'} (CA, ASR, RA in %)`;
}

export function rowsCsv(rows: readonly Row[]): string {
  const columns = rows.length ? Object.keys(rows[0]) : ROW_COLUMNS;
  return [columns, ...rows.map((r) => columns.map((c) => r[c]))].map((l) => l.map(csvCell).join(',')).join('\n');
}
