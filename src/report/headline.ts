// The first thing a reader sees: what was tested, and per model x attack the answer: was the model
// backdoored, and what did the best defense undo (e.g. "Audio BadNets on ResNet: ASR 98.8% -> 2.1% with
// GN-FT (default), CA 95.2% -> 94.0%").

import { html, type Raw } from './escape.ts';
import type { Job } from './job.ts';
import { attackName, compareAttacks, compareModels, compareSettings, modelName, noDefenseKey, pct, settingKey, settingLabel } from './names.ts';
import { type Cell, datasetKey, type PaperTable, type Row, settingOf } from './paper-table.ts';

/** An attack whose ASR reaches this has planted a working backdoor. */
export const backdoorAsr = 0.5;
/** A defense that brings the ASR below this has removed the backdoor. */
export const removedAsr = 0.1;

function list(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

function seedsOf(jobs: readonly Job[]): string {
  const seeds = [...new Set(jobs.flatMap((j) => [j.seed, ...(j.attackSeed !== undefined ? [j.attackSeed] : [])]))].sort((a, b) => a - b);
  return seeds.length === 1 ? `seed ${seeds[0]}` : `seeds ${seeds.join(', ')}`;
}

/** "What was tested": data sets, models, attacks, defenses, seeds, and how many jobs of each kind. */
export function testedSummary(jobs: readonly Job[], skipped: number): Raw {
  const ok = jobs.filter((j) => j.status === 'ok');
  const failed = jobs.length - ok.length;
  const count = (kind: string) => jobs.filter((j) => j.kind === kind).length;
  const settings = new Map(jobs.filter((j) => j.kind === 'defense').map((j) => [settingKey(settingOf(j)), settingOf(j)]));
  const kinds = [`${count('attack')} attack`, `${count('defense')} defense`, ...(count('clean') ? [`${count('clean')} clean-model`] : [])];
  return html`<ul class="tested">
<li><b>Data:</b> ${list([...new Set(jobs.map(datasetKey))].sort())}</li>
<li><b>Models:</b> ${list([...new Set(jobs.map((j) => j.model))].sort(compareModels).map(modelName))}</li>
<li><b>Attacks:</b> ${list([...new Set(jobs.flatMap((j) => (j.attack ? [j.attack] : [])))].sort(compareAttacks).map(attackName)) || 'none'}</li>
<li><b>Defenses:</b> ${list([...settings.values()].sort(compareSettings).map(settingLabel)) || 'none'}</li>
<li><b>Seeds:</b> ${seedsOf(ok.length ? ok : jobs)}</li>
<li><b>Jobs:</b> ${jobs.length} (${kinds.join(', ')})${failed ? html`, <span class="bad">${failed} failed</span> (listed under Provenance)` : ''}${skipped ? html`; <span class="bad">${skipped} input file(s) skipped</span> (see Warnings)` : ''}</li>
</ul>`;
}

function value(cell: Cell | undefined, metric: 'asr' | 'ca'): string {
  const s = cell?.[metric];
  return s ? `${pct(s.mean)}%` : 'n/a';
}

/** The defense column with the lowest mean ASR in the row (ties: the higher CA). */
export function bestDefense(row: Row, table: PaperTable): string | undefined {
  const candidates = table.columns.filter((c) => c.key !== noDefenseKey && row.cells.get(c.key)?.asr);
  candidates.sort((a, b) => {
    const x = row.cells.get(a.key)!;
    const y = row.cells.get(b.key)!;
    return x.asr!.mean - y.asr!.mean || (y.ca?.mean ?? 0) - (x.ca?.mean ?? 0);
  });
  return candidates[0]?.key;
}

function badge(kind: 'bad' | 'good' | 'mid', text: string): Raw {
  return html`<span class="badge badge-${kind}">${text}</span>`;
}

function answer(row: Row, table: PaperTable): Raw {
  const subject = `${row.label} on ${modelName(row.model)}`;
  const none = row.cells.get(noDefenseKey);
  const asr = none?.asr?.mean;
  const verdict = asr === undefined ? '' : asr >= backdoorAsr ? badge('bad', 'backdoored') : badge('mid', 'weak backdoor');
  const n = none?.asr && none.asr.n > 1 ? ` (means over ${none.asr.n} seeds)` : '';
  const best = bestDefense(row, table);
  if (!best) {
    const clean = row.clean.asr ? `, clean model's false-trigger rate ${value(row.clean, 'asr')}` : '';
    const cleanCa = row.clean.ca ? ` (clean model ${value(row.clean, 'ca')})` : '';
    return html`<li>${verdict} <b>${subject}</b>: ASR ${value(none, 'asr')}${clean}; CA ${value(none, 'ca')}${cleanCa}${n}. No defense was run on it.</li>`;
  }
  const after = row.cells.get(best)!;
  const label = table.columns.find((c) => c.key === best)!.label;
  const afterAsr = after.asr!.mean;
  const outcome = afterAsr < removedAsr ? badge('good', 'removed') : afterAsr < backdoorAsr ? badge('mid', 'reduced') : badge('bad', 'not removed');
  const others = table.columns.filter((c) => c.key !== noDefenseKey && c.key !== best && row.cells.get(c.key)?.asr).length;
  return html`<li>${verdict} ${outcome} <b>${subject}</b>: ASR ${value(none, 'asr')} → ${value(after, 'asr')} with ${label}, CA ${value(none, 'ca')} → ${value(after, 'ca')}${n}${others ? html`<span class="muted"> (best of ${others + 1} defenses by ASR)</span>` : ''}.</li>`;
}

/** One line per table row (model x attack), in table order. */
export function answers(tables: readonly PaperTable[]): Raw {
  if (tables.length === 0) return html`<p>No finished attack or defense job was found, so there is nothing to answer yet.</p>`;
  return html`${tables.map(
    (t) => html`${tables.length > 1 ? html`<h3>${t.dataset}</h3>` : ''}<ul class="answers">${t.blocks.flatMap((b) => b.rows.map((r) => answer(r, t)))}</ul>`,
  )}<p class="muted small">Backdoored: ASR ≥ ${pct(backdoorAsr, 0)}% without defense. Removed: ASR below ${pct(removedAsr, 0)}% after it; reduced: below ${pct(backdoorAsr, 0)}%. The defense named is the one with the lowest ASR; the tables below have all of them.</p>`;
}
