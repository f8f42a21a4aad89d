// `kwshield report` as a library call: inputs (results folders, run folders, analysis folders) -> one
// self-contained HTML page (headline, paper-layout tables, figures, provenance) and a PNG of every
// figure, written beside the page as <stem>-figures/NN-name.png.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TopLevelSpec } from 'vega-lite';
import type { Analysis } from '../analysis/analysis-file.ts';
import { replaceFolder, writeFileAtomic } from '../data/atomic.ts';
import { type AnalysisPanel, analyzeHow, embeddingFigures, gradientFigures, zoneFigures } from './analysis-figures.ts';
import { html, type Raw } from './escape.ts';
import { exampleFigures } from './example-figures.ts';
import { type PreparedExampleSet, prepareExamples } from './examples.ts';
import { caAsrScatter, cleanRatioCurve, type FigureOrMissing, isMissing, trainingCurves } from './figures.ts';
import { answers, testedSummary } from './headline.ts';
import { figureBlock, generatorMarker, page, type RenderedFigure, type Section } from './html.ts';
import type { Job } from './job.ts';
import { type LoadedInputs, loadInputs } from './load.ts';
import { attackName, compareAttacks, compareModels, modelName } from './names.ts';
import { type PaperTable, paperTables } from './paper-table.ts';
import { provenanceTable, shellWord } from './provenance.ts';
import { specToSvg, svgToPng } from './render.ts';
import type { ExampleSet } from './run-folder.ts';
import { caAsrTable, raDerTable } from './tables.ts';

export interface ReportOptions {
  /** where the page will be written: the PNG links point at <stem>-figures/ beside it (default report.html) */
  out?: string;
  /** analysis folders besides the inputs */
  analysis?: string[];
  title?: string;
  /** the date printed on the page (default: now) */
  now?: Date;
  /** example clips shown per attack run (default 3) */
  maxExamples?: number;
  /** attack runs whose examples are shown (default 6; one per model x attack) */
  maxExampleRuns?: number;
}

export interface ReportPng {
  /** file name inside the figures folder */
  name: string;
  bytes: Uint8Array;
}

export interface BuiltReport {
  html: string;
  pngs: ReportPng[];
  warnings: string[];
  /** input files skipped as corrupt or unknown */
  skipped: number;
  jobs: number;
  figures: { number: number; slug: string; title: string; png: string }[];
  /** figures left out for want of data, with what would show them */
  missing: { slug: string; title: string; missing: string }[];
}

/** The figures folder of a page: report.html -> report-figures. */
export function figuresFolderName(out: string): string {
  return `${path.basename(out).replace(/\.html?$/i, '')}-figures`;
}

function kwshieldVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json'), 'utf8'));
    return String(pkg.version);
  } catch {
    return 'unknown';
  }
}

/** The model architecture and attack an analysis is about, from the jobs or the analysed run's model.json. */
function analysisGroup(a: Analysis, jobs: readonly Job[]): string {
  const run = path.resolve(a.model);
  const job = jobs.find((j) => j.runs.model && path.resolve(j.runs.model) === run);
  let arch = a.modelFamily ?? job?.model;
  if (!arch && existsSync(path.join(run, 'model.json'))) {
    try {
      arch = JSON.parse(readFileSync(path.join(run, 'model.json'), 'utf8')).model;
    } catch {
      arch = undefined;
    }
  }
  return `${modelName(arch ?? path.basename(run))} · ${attackName(a.attack ?? job?.attack)}`;
}

/** One example run per model x attack (the lowest seed), in table order. */
function chooseExampleRuns(sets: readonly ExampleSet[], max: number): ExampleSet[] {
  const sorted = [...sets].sort(
    (a, b) => compareModels(a.job.model, b.job.model) || compareAttacks(a.job.attack ?? '', b.job.attack ?? '') || a.job.seed - b.job.seed,
  );
  const seen = new Set<string>();
  return sorted
    .filter((s) => {
      const key = `${s.job.model}|${s.job.attack}|${s.job.dataName}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .slice(0, max);
}

function audioAside(prepared: PreparedExampleSet): Raw {
  const clips = prepared.examples.filter((e) => e.cleanAudio || e.triggeredAudio);
  if (clips.length === 0) return html``;
  const player = (uri: string | undefined, what: string) =>
    uri ? html`<audio controls preload="metadata" src="${uri}" aria-label="${what}"></audio>` : html`<span class="muted">none</span>`;
  const feature = clips.every((c) => !c.triggeredAudio);
  return html`<aside class="audio"><h4>Listen</h4>${clips.map(
    (c) => html`<div class="clip"><b>clip ${String(c.index).padStart(2, '0')}${c.word ? ` ('${c.word}')` : ''}</b>
<div><span>clean</span>${player(c.cleanAudio, `clip ${c.index} clean`)}</div>
${feature ? '' : html`<div><span>triggered</span>${player(c.triggeredAudio, `clip ${c.index} triggered`)}</div>`}</div>`,
  )}${feature ? html`<p class="muted">This trigger is added to the features, not the sound: there is no triggered clip to hear.</p>` : ''}</aside>`;
}

function defaultTitle(jobs: readonly Job[]): string {
  const models = [...new Set(jobs.map((j) => j.model))].sort(compareModels).map(modelName);
  const attacks = [...new Set(jobs.flatMap((j) => (j.attack ? [j.attack] : [])))].sort(compareAttacks).map(attackName);
  const what = [models.join(', '), attacks.length > 4 ? `${attacks.length} attacks` : attacks.join(', ')].filter((s) => s).join(' × ');
  return `Backdoor report${what ? `: ${what}` : ''}`;
}

function tablesSection(tables: readonly PaperTable[]): Section {
  if (tables.length === 0) {
    return { id: 'tables', title: 'Tables', body: html`<p class="missing">No finished attack or defense job with metrics was found: no table.</p>` };
  }
  const parts: { id: string; title: string }[] = [];
  const bodies: Raw[] = [];
  let number = 1;
  for (const t of tables) {
    parts.push({ id: `table-${number}`, title: `Table ${number}: CA and ASR${tables.length > 1 ? `, ${t.dataset}` : ''}` });
    bodies.push(caAsrTable(t, number++));
  }
  for (const t of tables) {
    parts.push({ id: `table-${number}`, title: `Table ${number}: RA and DER${tables.length > 1 ? `, ${t.dataset}` : ''}` });
    bodies.push(raDerTable(t, number++));
  }
  return { id: 'tables', title: 'Tables', body: html`${bodies}`, parts };
}

/** The three neuron-analysis figures, or one note for all of them when there is no analysis at all. */
function analysisFigures(panels: readonly AnalysisPanel[]): FigureOrMissing[] {
  const figures = [...gradientFigures(panels), ...zoneFigures(panels), ...embeddingFigures(panels)];
  if (!figures.every(isMissing)) return figures;
  return [
    {
      slug: 'neuron-analysis',
      title: 'Neuron analysis (per-neuron gradients, CLC/BLC zones, feature embeddings)',
      missing: `No analysis folder was given or linked. ${analyzeHow}`,
    },
  ];
}

/** Builds the page from loaded inputs (see loadInputs). */
export async function buildReportFrom(loaded: LoadedInputs, inputs: readonly string[], opts: ReportOptions = {}): Promise<BuiltReport> {
  const out = opts.out ?? 'report.html';
  const folder = figuresFolderName(out);
  const warnings = [...loaded.warnings];
  const jobs = loaded.jobs;
  const tables = paperTables(jobs);

  const panels: AnalysisPanel[] = loaded.analyses.map((a) => ({ analysis: a, group: analysisGroup(a, jobs) }));
  const prepared: PreparedExampleSet[] = [];
  for (const set of chooseExampleRuns(loaded.examples, opts.maxExampleRuns ?? 6)) {
    const p = await prepareExamples(set, { maxExamples: opts.maxExamples ?? 3 });
    warnings.push(...p.problems);
    prepared.push(p);
  }
  const asides = new Map<string, Raw>(prepared.map((p, i) => [`examples-features-${i + 1}`, audioAside(p)]));
  for (const [i, p] of prepared.entries()) if (!p.examples.some((e) => e.features)) asides.set(`examples-stft-${i + 1}`, audioAside(p));

  const wanted: FigureOrMissing[] = [
    caAsrScatter(jobs),
    cleanRatioCurve(jobs),
    trainingCurves(loaded.curves),
    ...analysisFigures(panels),
    ...exampleFigures(prepared),
  ];
  const rendered: (RenderedFigure | FigureOrMissing)[] = [];
  const pngs: ReportPng[] = [];
  let number = 0;
  for (const f of wanted) {
    if (isMissing(f)) {
      rendered.push(f);
      continue;
    }
    number++;
    const svg = await specToSvg(f.spec as unknown as TopLevelSpec);
    const name = `${String(number).padStart(2, '0')}-${f.slug}.png`;
    pngs.push({ name, bytes: svgToPng(svg) });
    rendered.push({ number, slug: f.slug, title: f.title, caption: f.caption, svg, png: `${encodeURIComponent(folder)}/${name}`, aside: asides.get(f.slug) });
  }

  const generated = (opts.now ?? new Date()).toISOString().replace(/\.\d+Z$/, 'Z');
  const version = kwshieldVersion();
  const command = ['kwshield', 'report', ...inputs, ...(opts.analysis ?? []).flatMap((a) => ['--analysis', a]), '--out', out].map(shellWord).join(' ');
  const sections: Section[] = [
    {
      id: 'summary',
      title: 'Summary',
      body: html`<h3>What was tested</h3>${testedSummary(jobs, loaded.skipped)}<h3>The answer</h3>${answers(tables)}`,
    },
    tablesSection(tables),
    {
      id: 'figures',
      title: 'Figures',
      body: html`${rendered.map(figureBlock)}`,
      parts: rendered.map((f) => ({
        id: `fig-${f.slug}`,
        title: 'number' in f ? `Figure ${f.number}: ${f.title}` : `${f.title} (not shown)`,
        missing: !('number' in f),
      })),
    },
    {
      id: 'provenance',
      title: 'Provenance',
      body: html`<p>Every number above comes from one of these jobs. Each row gives its configuration, seeds, results, wall time, machine, software versions and the file it was read from, and the command that runs it again. This page was made with <code>${command}</code>.</p><div class="table-wrap">${provenanceTable(jobs)}</div>`,
    },
  ];
  if (warnings.length) {
    sections.push({
      id: 'warnings',
      title: `Warnings (${warnings.length})`,
      body: html`<p>${loaded.skipped} input file(s) were skipped; the report is built from the rest.</p><ul class="warnings">${warnings.map((w) => html`<li>${w}</li>`)}</ul>`,
    });
  }
  const title = opts.title ?? defaultTitle(jobs);
  const subtitle = html`Generated ${generated} by kwshield ${version} from ${jobs.length} job(s) in ${inputs.map((i, k) => html`${k ? ', ' : ''}<code>${i}</code>`)}.`;
  return {
    html: page({ title, subtitle, sections }),
    pngs,
    warnings,
    skipped: loaded.skipped,
    jobs: jobs.length,
    figures: rendered.flatMap((f) => ('svg' in f ? [{ number: f.number, slug: f.slug, title: f.title, png: f.png }] : [])),
    missing: rendered.flatMap((f) => (isMissing(f as FigureOrMissing) ? [f as { slug: string; title: string; missing: string }] : [])),
  };
}

/** Loads the inputs and builds the page (nothing is written; see writeReport). */
export async function buildReport(inputs: readonly string[], opts: ReportOptions = {}): Promise<BuiltReport> {
  return buildReportFrom(loadInputs(inputs, { analysis: opts.analysis }), inputs, opts);
}

/** An output that would overwrite something that is not a kwshield report: refused unless forced. */
export class ReportOutputError extends Error {}

function isOurPage(file: string): boolean {
  try {
    return readFileSync(file, 'utf8').slice(0, 2000).includes(`content="${generatorMarker}"`);
  } catch {
    return false;
  }
}

function isOurFigures(dir: string): boolean {
  return statSync(dir).isDirectory() && readdirSync(dir).every((name) => name.endsWith('.png'));
}

/**
 * Writes the page and its figures folder atomically: the PNGs into a temporary folder renamed into place,
 * the page through a temporary file and a rename. An earlier report is replaced; anything else is only with `force`.
 */
export async function writeReport(
  report: BuiltReport,
  out: string,
  opts: { force?: boolean } = {},
): Promise<{ html: string; figures: string; pngs: string[] }> {
  const file = path.resolve(out);
  const dir = path.dirname(file);
  const figures = path.join(dir, figuresFolderName(file));
  if (existsSync(file) && !opts.force && !isOurPage(file)) {
    throw new ReportOutputError(`${out} exists and is not a kwshield report; choose another --out or pass --force to replace it`);
  }
  if (existsSync(figures) && !opts.force && !isOurFigures(figures)) {
    throw new ReportOutputError(`${figures} exists and holds more than report figures; move it away or pass --force to replace it`);
  }
  mkdirSync(dir, { recursive: true });
  const temp = path.join(dir, `.${path.basename(figures)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(temp);
  for (const png of report.pngs) writeFileSync(path.join(temp, png.name), png.bytes);
  await replaceFolder(temp, figures, true);
  await writeFileAtomic(file, report.html);
  return { html: file, figures, pngs: report.pngs.map((p) => path.join(figures, p.name)) };
}
