// Where every number came from: per job its configuration, seeds, results, wall time, machine, versions
// and the file it was read from, and the kwshield command that makes it again.

import { html, type Raw } from './escape.ts';
import type { Job, Machine, Metrics } from './job.ts';
import { attackName, compareAttacks, compareModels, compareSettings, modelName, pct, settingLabel } from './names.ts';
import { datasetKey, settingOf } from './paper-table.ts';

/** A shell word: quoted when it holds anything but safe characters. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

const optionFlags = (options: Record<string, unknown> | undefined) =>
  Object.keys(options ?? {})
    .sort()
    .flatMap((k) => ['-o', `${k}=${typeof options![k] === 'string' ? options![k] : JSON.stringify(options![k])}`]);

/** The kwshield command line that runs the job again (placeholders in capitals where the record does not say). */
export function reproduceCommand(job: Job, attackRunOf: (job: Job) => string | undefined = () => undefined): string {
  const data = job.data ?? 'DATA';
  const words: string[] = ['kwshield'];
  if (job.kind === 'attack') {
    words.push('attack', '--data', data, '--attack', job.attack ?? 'ATTACK', '--model', job.model);
    if (job.frontEnd) words.push('--front-end', job.frontEnd);
    if (job.poisonRatio !== undefined) words.push('--poison-ratio', String(job.poisonRatio));
    if (job.target) words.push('--target', job.target);
    words.push('--seed', String(job.attackSeed ?? job.seed));
    if (job.epochs !== undefined) words.push('--epochs', String(job.epochs));
    if (job.trainRecipe) words.push('--recipe', job.trainRecipe);
    words.push(...optionFlags(job.attackOptions), '--out', job.runs.model ?? `runs/${job.model}-${job.attack}-s${job.attackSeed ?? job.seed}`);
  } else if (job.kind === 'defense') {
    const attackRun = job.runs.attack ?? attackRunOf(job) ?? 'ATTACK-RUN';
    words.push('defend', '--model', attackRun, '--attack-of', attackRun, '--data', data, '--defense', job.defense ?? 'DEFENSE');
    if (job.recipe) words.push('--recipe', job.recipe);
    if (job.cleanRatio !== undefined) words.push('--clean-ratio', String(job.cleanRatio));
    words.push('--seed', String(job.seed), ...optionFlags(job.options), '--out', job.runs.model ?? `defended/${job.id}`);
  } else {
    words.push('train', '--data', data, '--model', job.model, '--seed', String(job.seed));
    if (job.epochs !== undefined) words.push('--epochs', String(job.epochs));
    words.push('--out', job.runs.model ?? `runs/${job.model}-clean-s${job.seed}`);
  }
  return words.map(shellWord).join(' ');
}

function metricsText(m: Metrics | undefined): string {
  return m ? `CA ${pct(m.ca)} · ASR ${pct(m.asr)} · RA ${pct(m.ra)}` : 'n/a';
}

export function machineText(m: Machine | undefined): string {
  if (!m) return 'not recorded';
  const cpu = [m.cpus !== undefined ? `${m.cpus} × ` : '', m.cpuModel ?? ''].join('').trim();
  const parts = [cpu, m.memGb !== undefined ? `${m.memGb} GB` : '', m.node ? `node ${m.node}` : '', m.platform ?? ''].filter((p) => p);
  return `${m.hostname ?? 'unknown host'}${parts.length ? ` (${parts.join(', ')})` : ''}`;
}

function configText(job: Job): string {
  const parts = [modelName(job.model), job.frontEnd, datasetKey(job)];
  if (job.attack)
    parts.push(`${attackName(job.attack)}${job.poisonRatio !== undefined ? ` p=${job.poisonRatio}` : ''}${job.target ? ` → '${job.target}'` : ''}`);
  if (job.kind === 'defense') parts.push(`${settingLabel(settingOf(job))}${job.cleanRatio !== undefined ? `, clean ${pct(job.cleanRatio, 0)}%` : ''}`);
  if (job.epochs !== undefined) parts.push(`${job.epochs} epochs`);
  return parts.filter((p) => p).join(' · ');
}

function seedText(job: Job): string {
  if (job.kind === 'defense' && job.attackSeed !== undefined) return `attack ${job.attackSeed}, defense ${job.seed}`;
  return String(job.seed);
}

function resultCell(job: Job): Raw {
  if (job.status === 'failed') return html`<span class="bad">failed</span>${job.error ? html`: ${job.error}` : ''}`;
  if (job.kind === 'defense')
    return html`before: ${metricsText(job.before)}<br>after: ${metricsText(job.metrics)}${job.der !== undefined ? html`<br>DER ${pct(job.der)}` : ''}`;
  if (job.kind === 'attack') return html`${metricsText(job.metrics)}${job.clean ? html`<br>clean model: ${metricsText(job.clean)}` : ''}`;
  return html`${metricsText(job.metrics)}`;
}

const kindRank = { clean: 0, attack: 1, defense: 2 };

export function sortJobs(jobs: readonly Job[]): Job[] {
  return [...jobs].sort(
    (a, b) =>
      (datasetKey(a) < datasetKey(b) ? -1 : datasetKey(a) > datasetKey(b) ? 1 : 0) ||
      compareModels(a.model, b.model) ||
      compareAttacks(a.attack ?? '', b.attack ?? '') ||
      kindRank[a.kind] - kindRank[b.kind] ||
      compareSettings(settingOf(a), settingOf(b)) ||
      (a.cleanRatio ?? 0) - (b.cleanRatio ?? 0) ||
      (a.attackSeed ?? 0) - (b.attackSeed ?? 0) ||
      a.seed - b.seed ||
      (a.source < b.source ? -1 : 1),
  );
}

function versionsText(v: Record<string, string> | undefined): string {
  if (!v || Object.keys(v).length === 0) return 'not recorded';
  return Object.entries(v)
    .map(([k, x]) => `${k} ${x}`)
    .join(', ');
}

/** The run folder of the attack job a defense job purified, when that job is among the inputs. */
function attackRunFinder(jobs: readonly Job[]): (job: Job) => string | undefined {
  const key = (j: Job) => JSON.stringify([datasetKey(j), j.model, j.attack, j.attackSeed ?? j.seed, j.frontEnd, j.poisonRatio, j.target]);
  const runs = new Map(jobs.filter((j) => j.kind === 'attack' && j.runs.model).map((j) => [key(j), j.runs.model]));
  return (job) => runs.get(key(job));
}

/** '2026-01-02 03:04' from an ISO date; other strings as they are. */
const shortDate = (date: string | undefined) => (date ? date.replace(/^(\d{4}-\d\d-\d\d)T(\d\d:\d\d).*$/, '$1 $2') : '–');

/** The one value every job shares, or undefined when they differ. */
function shared(values: string[]): string | undefined {
  return values.length > 0 && values.every((v) => v === values[0]) ? values[0] : undefined;
}

/** Jobs shown open; more than this and the table starts folded (a click opens it). */
const openUpTo = 40;

export function provenanceTable(jobs: readonly Job[]): Raw {
  const attackRunOf = attackRunFinder(jobs);
  const machine = shared(jobs.map((j) => machineText(j.machine)));
  const versions = shared(jobs.map((j) => versionsText(j.versions)));
  const rows = sortJobs(jobs).map(
    (job, i) => html`<tr class="${job.status === 'failed' ? 'failed' : ''}">
<td class="num">${i + 1}</td>
<td class="job"><code>${job.id}</code><br><span class="muted">${job.kind}</span></td>
<td>${configText(job)}</td>
<td>${seedText(job)}</td>
<td>${resultCell(job)}</td>
<td class="num">${job.seconds !== undefined ? `${job.seconds.toFixed(0)} s` : '–'}</td>
<td>${shortDate(job.date)}${machine === undefined ? html`<br><span class="muted">${machineText(job.machine)}</span>` : ''}</td>
${versions === undefined ? html`<td>${versionsText(job.versions)}</td>` : ''}
</tr>
<tr class="reproduce"><td></td><td colspan="${versions === undefined ? 7 : 6}"><span class="muted">reproduce:</span> <code>${reproduceCommand(job, attackRunOf)}</code><br><span class="muted">read from:</span> <code>${job.source}</code></td></tr>`,
  );
  const common = [machine !== undefined ? html`Machine of every job: ${machine}.` : '', versions !== undefined ? html` Versions: ${versions}.` : ''];
  const table = html`<div class="table-wrap"><table class="provenance">
<thead><tr><th>#</th><th>job</th><th>configuration</th><th>seed</th><th>results (%)</th><th>wall time</th><th>date${machine === undefined ? ', machine' : ''}</th>${versions === undefined ? html`<th>versions</th>` : ''}</tr></thead>
<tbody>${rows}</tbody>
</table></div>`;
  return html`<p>${common}</p><details class="provenance"${jobs.length <= openUpTo ? html` open` : ''}><summary>${jobs.length} job(s), with the command that runs each again</summary>${table}</details>`;
}
