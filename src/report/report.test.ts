import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type SyntheticInputs, writeSyntheticInputs } from '../../test/helpers/report-inputs.ts';
import { type BuiltReport, buildReport, ReportOutputError, writeReport } from './report.ts';

/** Result files of the folder, parsed here (not by the report). */
function readResults(dir: string): { status: string; job: Record<string, unknown>; metrics?: Record<string, number> }[] {
  const out = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (name.endsWith('.json')) {
      try {
        const r = JSON.parse(readFileSync(full, 'utf8'));
        if (r.format === 'kwshield-result' && typeof r.metrics?.ca === 'number') out.push(r);
      } catch {}
    }
  }
  return out;
}

const pct1 = (x: number) => (100 * x).toFixed(1);

describe('buildReport', () => {
  let root: string;
  let s: SyntheticInputs;
  let report: BuiltReport;
  let out: string;

  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'kwshield-report-'));
    s = await writeSyntheticInputs(root, { models: ['resnet', 'lstm'], attacks: ['badnets', 'jingleback'], seeds: [0, 1] });
    out = path.join(root, 'site', 'report.html');
    report = await buildReport([s.results, s.defenseRun], { out, analysis: [s.analysis], now: new Date('2026-01-01T00:00:00Z') });
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('opens with what was tested and the answer per model x attack', () => {
    const summary = report.html.split('<section id="tables">')[0];
    assert.match(summary, /What was tested/);
    for (const word of ['ResNet', 'LSTM', 'Audio BadNets', 'JingleBack', 'GN-FT (default)', 'FT (default)', 'FP (default)', 'seeds 0, 1'])
      assert.ok(summary.includes(word), word);
    const answers = [...summary.matchAll(/<li><span class="badge/g)];
    assert.equal(answers.length, s.models.length * s.attacks.length);
    assert.match(summary, /ASR [\d.]+% → [\d.]+% with GN-FT/);
  });

  it('has the CA/ASR table with the mean ± std of the seeds, and the RA/DER table', () => {
    const rows = readResults(s.results).filter((r) => r.job.kind === 'attack' && r.job.model === 'lstm' && r.job.attack === 'jingleback');
    const asr = rows.map((r) => r.metrics!.asr);
    const mean = asr.reduce((a, b) => a + b, 0) / asr.length;
    const sd = Math.sqrt(asr.reduce((a, b) => a + (b - mean) ** 2, 0) / (asr.length - 1));
    const table = report.html.split('id="table-1"')[1].split('</figure>')[0];
    const lstm = table.split('>LSTM<')[1];
    const jingle = lstm.split('>JingleBack</th>')[1].split('</tr>')[0];
    const firstCell = jingle.split('</td>')[0];
    assert.ok(firstCell.includes(`${pct1(mean)}<span class="sd"> ± ${pct1(sd)}</span>`), firstCell);
    assert.match(report.html, /id="table-2"/);
    assert.match(report.html.split('id="table-2"')[1], /DER ↑/);
  });

  it('draws every figure as inline SVG with a numbered caption, and a PNG of each', () => {
    const expected = [
      'ca-vs-asr',
      'clean-ratio',
      'training-curves',
      'neuron-gradients-1',
      'neuron-zones-1',
      'embeddings-1',
      'examples-features-1',
      'examples-stft-1',
    ];
    assert.deepEqual(
      report.figures.map((f) => f.slug),
      expected,
    );
    assert.deepEqual(report.missing, []);
    const figures = report.html.split('<figure id="fig-').slice(1);
    assert.equal(figures.length, expected.length);
    figures.forEach((f, i) => {
      assert.equal([...f.matchAll(/<svg /g)].length, 1, expected[i]);
      assert.match(f, new RegExp(`<span class="label">Figure ${i + 1}\\.</span> <b>[^<]+\\.</b>`));
      assert.match(f, /<text[^>]*>[^<]*(%|nats|s\)|epoch|kHz|coefficient|index|variance)/, `axis titles with units in ${expected[i]}`);
    });
    for (const title of [
      'Clean accuracy against attack success rate',
      'Defense against the clean-data ratio',
      'Defense training curves',
      'Per-neuron gradient norms',
      'Neuron zones (CLC/BLC)',
      'Feature embeddings',
      'What the model hears',
      'Spectrograms of the example clips',
    ]) {
      assert.ok(report.html.includes(title), title);
    }
    assert.equal(report.pngs.length, expected.length);
    for (const png of report.pngs) assert.deepEqual([...png.bytes.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], png.name);
  });

  it('embeds the example audio and asks for nothing from outside', () => {
    assert.equal([...report.html.matchAll(/<audio controls[^>]*src="data:audio\/wav;base64,/g)].length, 4);
    assert.doesNotMatch(report.html, /(src|href)="(https?:)?\/\//);
    assert.doesNotMatch(report.html, /<link |@import|url\(http/);
    assert.match(report.html, /Content-Security-Policy/);
  });

  it('escapes hostile strings everywhere', () => {
    assert.doesNotMatch(report.html, /<script/i);
    assert.ok(report.html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'), 'the hostile class name is shown as text');
  });

  it('counts and lists the skipped files', () => {
    assert.equal(report.skipped, s.corruptFiles.length);
    const warnings = report.html.split('<section id="warnings">')[1];
    assert.ok(warnings, 'a Warnings section');
    assert.ok(warnings.includes(`${s.corruptFiles.length} input file(s) were skipped`));
    for (const f of s.corruptFiles) assert.ok(warnings.includes(path.basename(f)), f);
    assert.match(report.html, /3 input file\(s\) skipped/);
  });

  it('gives the provenance of every job with a command to reproduce it', () => {
    const provenance = report.html.split('<section id="provenance">')[1].split('</section>')[0];
    const jobs = [...provenance.matchAll(/<tr class="reproduce">/g)].length;
    assert.equal(jobs, report.jobs);
    assert.match(provenance, /kwshield defend --model \S+resnet-badnets-s0 --attack-of/);
    assert.match(provenance, /kwshield attack --data \S+ --attack badnets --model resnet/);
    assert.match(provenance, /synthetic-host/);
    assert.match(provenance, /failed/);
  });

  it('writes the page and its figures folder, replaces its own earlier output, refuses a foreign file', async () => {
    const written = await writeReport(report, out);
    assert.ok(existsSync(written.html));
    assert.deepEqual(readdirSync(written.figures).sort(), report.pngs.map((p) => p.name).sort());
    assert.equal(path.basename(written.figures), 'report-figures');
    await writeReport(report, out);
    assert.deepEqual(
      readdirSync(path.dirname(out)).filter((n) => n.startsWith('.')),
      [],
      'no temporary file is left behind',
    );
    const foreign = path.join(root, 'site', 'notes.html');
    writeFileSync(foreign, '<p>my notes</p>');
    await assert.rejects(writeReport(report, foreign), ReportOutputError);
    assert.equal(readFileSync(foreign, 'utf8'), '<p>my notes</p>');
  });

  it('says what would show each missing figure and how to make it', async () => {
    const only = await buildReport([s.attackRun], { out: path.join(root, 'only.html') });
    const slugs = only.missing.map((m) => m.slug);
    assert.deepEqual(slugs, ['clean-ratio', 'training-curves', 'neuron-analysis']);
    assert.match(only.html, /kwshield analyze --model RUN/);
    assert.match(only.html, /--clean-ratio/);
    assert.equal(only.figures.length, 3);
    mkdirSync(path.join(root, 'empty'));
    const none = await buildReport([path.join(root, 'empty')], { out: path.join(root, 'none.html') });
    assert.equal(none.jobs, 0);
    assert.match(none.html, /nothing to answer yet/);
  });
});
