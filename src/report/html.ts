// The page: one self-contained HTML file (inline CSS, inline SVG figures, audio as data: URIs; no
// script, no font or stylesheet from elsewhere), with a table of contents. Every input string is
// escaped through escape.ts; only markup built here or by Vega enters raw.
import { html, type Raw, raw } from './escape.ts';
import { type FigureOrMissing, isMissing } from './figures.ts';
import { prefixIds } from './render.ts';

export const generatorMarker = 'kwshield report';

// The page may load nothing from anywhere: only its own inline style and data: images and audio.
const csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; media-src data:";

export interface Section {
  id: string;
  title: string;
  body: Raw;
  /** entries under this one in the table of contents */
  parts?: { id: string; title: string; missing?: boolean }[];
}

/** A figure drawn for the page: its SVG, its PNG export (a path relative to the page) and what goes beside it. */
export interface RenderedFigure {
  number: number;
  slug: string;
  title: string;
  caption: string;
  svg: string;
  png: string;
  aside?: Raw;
}

const css = `
:root { --ink: #1d1d1f; --muted: #666; --line: #dcdcdc; --soft: #f6f7f9; --accent: #1f5fa8; --bad: #b3261e; --good: #1e7b34; --mid: #9a6700; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink); background: #fff; }
.page { display: grid; grid-template-columns: 200px minmax(0, 1fr); gap: 28px; max-width: 1420px; margin: 0 auto; padding: 24px 20px; }
nav.toc { position: sticky; top: 16px; align-self: start; font-size: 13px; border-right: 1px solid var(--line); padding-right: 16px; max-height: calc(100vh - 32px); overflow: auto; }
nav.toc ol { list-style: none; padding-left: 0; margin: 0; }
nav.toc ol ol { padding-left: 14px; }
nav.toc li { margin: 3px 0; }
nav.toc a { color: var(--accent); text-decoration: none; }
nav.toc a:hover { text-decoration: underline; }
main { min-width: 0; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 12px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 24px 0 8px; }
.meta, .muted { color: var(--muted); }
.small { font-size: 13px; }
code { font: 12.5px/1.4 "DejaVu Sans Mono", Menlo, Consolas, monospace; background: var(--soft); padding: 1px 4px; border-radius: 3px; overflow-wrap: anywhere; }
ul.answers { padding-left: 0; list-style: none; }
ul.answers li { margin: 6px 0; padding: 8px 12px; background: var(--soft); border-radius: 6px; }
ul.tested { margin: 8px 0 16px; }
.badge { display: inline-block; font-size: 12px; font-weight: bold; padding: 1px 8px; border-radius: 10px; color: #fff; vertical-align: 1px; white-space: nowrap; }
.badge-bad { background: var(--bad); } .badge-good { background: var(--good); } .badge-mid { background: var(--mid); }
.bad { color: var(--bad); }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13.5px; }
figure.table { margin: 12px 0 28px; }
figure.table figcaption { margin: 0 0 8px; }
figcaption .label { font-weight: bold; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
table.paper { font-size: 13px; }
table.paper td.num { padding: 4px 6px; }
.sd { font-size: 11px; color: var(--muted); }
details.provenance summary { cursor: pointer; color: var(--accent); margin: 4px 0 8px; }
thead th { background: var(--soft); font-weight: bold; text-align: center; border-bottom: 1px solid #bbb; white-space: nowrap; }
thead th.group { border-left: 2px solid #fff; }
table.paper td.num, table.paper th.first { border-left: 0; }
table.paper tbody th { text-align: left; font-weight: normal; }
table.paper tbody th.attack { min-width: 130px; max-width: 280px; }
table.paper tbody th.model { font-weight: bold; background: #fff; border-right: 1px solid var(--line); }
table.paper tr.block-start > * { border-top: 2px solid #999; }
table.paper tr.average { background: #fafafa; font-style: italic; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.best { background: #eaf4ea; }
.n { font-size: 11px; color: var(--muted); }
.na { color: #aaa; }
figure { margin: 16px 0 36px; }
.figure-body { display: flex; flex-wrap: wrap; gap: 20px; align-items: flex-start; }
.svg-box { max-width: 100%; overflow-x: auto; }
.svg-box svg { display: block; max-width: 100%; height: auto; }
svg image { image-rendering: pixelated; }
figcaption { font-size: 13.5px; max-width: 980px; margin-top: 8px; }
.missing { padding: 10px 14px; margin: 12px 0; border-left: 4px solid #c9c9c9; background: var(--soft); font-size: 14px; }
nav.toc li.missing-entry a { color: #888; }
aside.audio { font-size: 13px; width: 240px; }
aside.audio h4 { margin: 0 0 6px; font-size: 13px; }
aside.audio .clip { margin: 0 0 12px; }
aside.audio .clip div { display: flex; align-items: center; gap: 8px; margin: 2px 0; }
aside.audio .clip span { width: 58px; flex: none; color: var(--muted); }
aside.audio audio { height: 30px; width: 175px; }
table.provenance { font-size: 12.5px; }
table.provenance tr.reproduce td { border-bottom: 1px solid #bbb; padding-bottom: 8px; }
table.provenance tr:not(.reproduce) td { border-bottom: 0; }
table.provenance tr.failed td { background: #fdf0ef; }
td.path { max-width: 180px; overflow-wrap: anywhere; }
td.job code { white-space: nowrap; }
ul.warnings { font-size: 13px; }
@media (max-width: 900px) { .page { grid-template-columns: 1fr; } nav.toc { position: static; border-right: 0; max-height: none; } }
@media print { nav.toc { display: none; } .page { display: block; } }
`;

function toc(sections: readonly Section[]): Raw {
  return html`<nav class="toc" aria-label="Contents"><b>Contents</b><ol>${sections.map(
    (s) =>
      html`<li><a href="#${s.id}">${s.title}</a>${s.parts?.length ? html`<ol>${s.parts.map((p) => html`<li class="${p.missing ? 'missing-entry' : ''}"><a href="#${p.id}">${p.title}</a></li>`)}</ol>` : ''}</li>`,
  )}</ol></nav>`;
}

/** Text with `backquoted` commands set as code (escaped like all text). */
export function withCode(text: string): Raw {
  return html`${text.split('`').map((part, i) => (i % 2 ? html`<code>${part}</code>` : part))}`;
}

/** A rendered figure (SVG inline, ids made unique) or the note that says why it is missing. */
export function figureBlock(f: RenderedFigure | FigureOrMissing): Raw {
  if ('svg' in f) {
    const svg = prefixIds(f.svg, `f${f.number}`).replace(/^<svg /, `<svg role="img" aria-labelledby="fig-${f.slug}-title" `);
    return html`<figure id="fig-${f.slug}">
<div class="figure-body"><div class="svg-box">${raw(svg)}</div>${f.aside ?? ''}</div>
<figcaption id="fig-${f.slug}-title"><span class="label">Figure ${f.number}.</span> <b>${f.title}.</b> ${f.caption} <a href="${f.png}">PNG</a></figcaption>
</figure>`;
  }
  if (isMissing(f)) return html`<div class="missing" id="fig-${f.slug}"><b>${f.title}:</b> not shown. ${withCode(f.missing)}</div>`;
  return html``;
}

export function page(o: { title: string; subtitle: Raw; sections: readonly Section[] }): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="${generatorMarker}">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<title>${html`${o.title}`.html}</title>
<style>${css}</style>
</head>
<body>
<div class="page">
${toc(o.sections).html}
<main>
<h1>${html`${o.title}`.html}</h1>
<p class="meta">${o.subtitle.html}</p>
${o.sections.map((s) => html`<section id="${s.id}"><h2>${s.title}</h2>${s.body}</section>`.html).join('\n')}
</main>
</div>
</body>
</html>
`;
}
