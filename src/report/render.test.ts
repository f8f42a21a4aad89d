import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { TopLevelSpec } from 'vega-lite';
import { html, raw } from './escape.ts';
import { loadFontMetrics } from './font-metrics.ts';
import { fontFiles, prefixIds, specToSvg, svgToPng } from './render.ts';

describe('escape', () => {
  it('escapes every interpolated value but not raw markup', () => {
    const hostile = `<img src=x onerror="alert('1')">&`;
    const out = html`<p title="${hostile}">${hostile}${raw('<b>ok</b>')}${[hostile, 1]}</p>`.html;
    assert.doesNotMatch(out, /<img/);
    assert.equal(out.split('&lt;img').length - 1, 3);
    assert.match(out, /<b>ok<\/b>/);
    assert.match(out, /&quot;alert\(&#39;1&#39;\)&quot;&gt;&amp;/);
  });
});

describe('render', { skip: existsSync(fontFiles.regular) ? false : 'DejaVu Sans is not installed' }, () => {
  it('measures text with the font: wide letters are wider', () => {
    const f = loadFontMetrics(fontFiles.regular);
    assert.ok(f.width('WWWW', 10) > 2 * f.width('iiii', 10));
    assert.ok(Math.abs(f.width('ab', 12) - (f.width('a', 12) + f.width('b', 12))) < 1e-9);
  });
  it('draws a spec as SVG with its text, and the SVG as a PNG', async () => {
    const spec = {
      data: { values: [{ x: 1, y: 2 }] },
      mark: 'point',
      encoding: { x: { field: 'x', type: 'quantitative', title: 'ASR (%)' }, y: { field: 'y', type: 'quantitative', title: 'CA (%)' } },
    } as TopLevelSpec;
    const svg = await specToSvg(spec);
    assert.match(svg, /^<svg /);
    assert.match(svg, />ASR \(%\)</);
    const png = svgToPng(svg, 1);
    assert.deepEqual([...png.subarray(1, 4)], [80, 78, 71]);
  });
  it('refuses to fetch anything', async () => {
    const spec = { data: { url: 'https://example.com/data.json' }, mark: 'point' } as TopLevelSpec;
    const svg = await specToSvg(spec);
    assert.doesNotMatch(svg, /example\.com/);
  });
  it('makes ids unique per figure', () => {
    const svg = '<svg><clipPath id="clip1"></clipPath><g clip-path="url(#clip1)"></g><use href="#clip1"/></svg>';
    assert.equal(prefixIds(svg, 'f2'), '<svg><clipPath id="f2-clip1"></clipPath><g clip-path="url(#f2-clip1)"></g><use href="#f2-clip1"/></svg>');
  });
});
