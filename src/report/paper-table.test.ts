import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Job, Metrics } from './job.ts';
import { bestColumns, type Cell, paperTable, paperTables } from './paper-table.ts';
import { caAsrTable, raDerTable } from './tables.ts';

let count = 0;
function job(kind: Job['kind'], o: Partial<Job> & { metrics: Metrics }): Job {
  return { id: 'x', source: `/r/${count++}`, status: 'ok', kind, dataName: 'd', words: 'scd10', model: 'resnet', seed: 0, runs: {}, ...o };
}

describe('bestColumns', () => {
  const cells = new Map<string, Cell>([
    ['none', { asr: { mean: 0.99, std: 0, n: 1 }, ca: { mean: 0.99, std: 0, n: 1 } }],
    ['a', { asr: { mean: 0.2, std: 0, n: 1 }, ca: { mean: 0.9, std: 0, n: 1 } }],
    ['b', { asr: { mean: 0.05, std: 0, n: 1 }, ca: { mean: 0.8, std: 0, n: 1 } }],
    ['c', { asr: { mean: 0.0502, std: 0, n: 1 }, ca: { mean: 0.9001, std: 0, n: 1 } }],
  ]);
  it('picks the lowest ASR and the highest CA among the candidates, ties as displayed', () => {
    assert.deepEqual([...bestColumns(cells, 'asr', ['a', 'b', 'c'])].sort(), ['b', 'c']);
    assert.deepEqual([...bestColumns(cells, 'ca', ['a', 'b', 'c'])].sort(), ['a', 'c']);
  });
  it('marks nothing with fewer than two candidates', () => {
    assert.equal(bestColumns(cells, 'asr', ['a']).size, 0);
  });
});

describe('paperTable', () => {
  // Given out of order on purpose: the table must sort models, attacks and defenses itself.
  const attacks = ['jingleback', 'badnets', 'vsvc-dsp', 'zzz-custom', 'ultrasonic'];
  const models = ['kwt', 'lstm', 'resnet'];
  const settings: [string, string][] = [
    ['nft', 'default'],
    ['gnft', 'default'],
    ['clp', 'default'],
    ['ft', 'default'],
    ['gnft', 'paper'],
    ['fp', 'default'],
  ];
  const jobs: Job[] = [];
  const values = new Map<string, number[]>();
  let k = 0;
  for (const model of models) {
    for (const attack of attacks) {
      for (const seed of [0, 1, 2]) {
        const asr = 0.9 + 0.01 * ((k++ * 7) % 10);
        jobs.push(job('attack', { model, attack, attackSeed: seed, seed, metrics: { ca: 0.95, asr, ra: 0.05 }, clean: { ca: 0.96, asr: 0.01, ra: 0.95 } }));
        values.set(`${model}|${attack}|none`, [...(values.get(`${model}|${attack}|none`) ?? []), asr]);
        for (const [defense, recipe] of settings) {
          const after = 0.01 * ((k++ * 13) % 50);
          jobs.push(
            job('defense', { model, attack, attackSeed: seed, seed, defense, recipe, cleanRatio: 0.05, metrics: { ca: 0.9, asr: after, ra: 0.8 }, der: 0.9 }),
          );
          values.set(`${model}|${attack}|${defense}|${recipe}`, [...(values.get(`${model}|${attack}|${defense}|${recipe}`) ?? []), after]);
        }
      }
    }
  }
  // A job at another clean ratio must stay out of the main table.
  jobs.push(job('defense', { model: 'resnet', attack: 'badnets', defense: 'gnft', recipe: 'default', cleanRatio: 0.2, metrics: { ca: 0.1, asr: 0.9, ra: 0 } }));
  const table = paperTable('d (scd10)', jobs);

  it('orders models and attacks as the paper does, unknown names last', () => {
    assert.deepEqual(
      table.blocks.map((b) => b.model),
      ['resnet', 'lstm', 'kwt'],
    );
    for (const b of table.blocks) {
      assert.deepEqual(
        b.rows.map((r) => r.attack),
        ['badnets', 'ultrasonic', 'jingleback', 'vsvc-dsp', 'zzz-custom'],
      );
    }
  });
  it('orders defenses: none, ft, fp, gnft paper, gnft default, then the others alphabetically', () => {
    assert.deepEqual(
      table.columns.map((c) => c.label),
      ['No Defense', 'FT (default)', 'FP (default)', 'GN-FT (paper)', 'GN-FT (default)', 'CLP (default)', 'NFT (default)'],
    );
  });
  it('holds mean and std over seeds in every cell, and the seed count', () => {
    assert.equal(table.n, 3);
    for (const b of table.blocks) {
      for (const r of b.rows) {
        for (const c of table.columns) {
          const key = c.setting ? `${r.model}|${r.attack}|${c.setting.defense}|${c.setting.recipe}` : `${r.model}|${r.attack}|none`;
          const xs = values.get(key)!;
          const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
          const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1));
          const s = r.cells.get(c.key)!.asr!;
          assert.ok(Math.abs(s.mean - mean) < 1e-12, key);
          assert.ok(Math.abs(s.std - std) < 1e-12, key);
          assert.equal(s.n, 3);
        }
      }
    }
  });
  it('marks the lowest mean ASR among the defenses of each row', () => {
    for (const b of table.blocks) {
      for (const r of b.rows) {
        const defenses = table.columns.slice(1);
        const lowest = Math.min(...defenses.map((c) => Math.round(1000 * r.cells.get(c.key)!.asr!.mean)));
        const expected = defenses.filter((c) => Math.round(1000 * r.cells.get(c.key)!.asr!.mean) === lowest).map((c) => c.key);
        assert.deepEqual([...r.best.asr!].sort(), expected.sort());
        assert.ok(!r.best.asr!.has('none'));
      }
    }
  });
  it('averages the rows of each model per column', () => {
    for (const b of table.blocks) {
      const c = table.columns[1];
      const expected = b.rows.reduce((a, r) => a + r.cells.get(c.key)!.asr!.mean, 0) / b.rows.length;
      assert.ok(Math.abs(b.average.cells.get(c.key)!.asr!.mean - expected) < 1e-12);
    }
  });
  it('keeps the other clean ratio out and counts it', () => {
    assert.equal(table.cleanRatio, 0.05);
    assert.equal(table.otherRatioJobs, 1);
  });

  it('renders every model x attack row, in order, with ASR and CA per column group', () => {
    const html = caAsrTable(table, 1).html;
    const attacksShown = [...html.matchAll(/<th scope="row" class="attack">([^<]*)<\/th>/g)].map((m) => m[1]);
    const expectedRows = ['Audio BadNets', 'Ultrasonic', 'JingleBack', 'VSVC (DSP)', 'zzz-custom', 'Average'];
    assert.deepEqual(attacksShown, [...expectedRows, ...expectedRows, ...expectedRows]);
    const modelsShown = [...html.matchAll(/class="model">([^<]*)</g)].map((m) => m[1]);
    assert.deepEqual(modelsShown, ['ResNet', 'LSTM', 'KWT']);
    const groups = [...html.matchAll(/class="group">([^<]*)</g)].map((m) => m[1]);
    assert.deepEqual(
      groups,
      table.columns.map((c) => c.label),
    );
    assert.equal([...html.matchAll(/>ASR ↓</g)].length, table.columns.length);
    assert.equal([...html.matchAll(/>CA ↑</g)].length, table.columns.length);
    // Every data row: 2 cells per column group.
    const bodyRows = html
      .split('<tbody>')[1]
      .split('</tr>')
      .filter((r) => r.includes('<td'));
    for (const row of bodyRows) assert.equal([...row.matchAll(/<td /g)].length, 2 * table.columns.length);
    assert.match(html, /mean ± std over n = 3 seeds/);
    assert.match(html, /<b>/);
  });
  it('renders RA and DER beside the clean model', () => {
    const html = raDerTable(table, 2).html;
    const groups = [...html.matchAll(/class="group">([^<]*)</g)].map((m) => m[1]);
    assert.deepEqual(groups, ['Clean model', ...table.columns.map((c) => c.label)]);
    assert.equal([...html.matchAll(/>DER ↑</g)].length, table.columns.length - 1);
  });
  it('makes one table per data set', () => {
    const other = jobs.slice(0, 10).map((j) => ({ ...j, dataName: 'e' }));
    assert.deepEqual(
      paperTables([...jobs, ...other]).map((t) => t.dataset),
      ['d (scd10)', 'e (scd10)'],
    );
  });
  it('uses the defense jobs before-metrics when no attack job is there, once per attack seed', () => {
    const t = paperTable('d', [
      job('defense', { attack: 'badnets', attackSeed: 0, defense: 'ft', before: { ca: 0.9, asr: 0.8, ra: 0 }, metrics: { ca: 0.9, asr: 0.5, ra: 0 } }),
      job('defense', { attack: 'badnets', attackSeed: 0, defense: 'fp', before: { ca: 0.9, asr: 0.8, ra: 0 }, metrics: { ca: 0.9, asr: 0.4, ra: 0 } }),
      job('defense', { attack: 'badnets', attackSeed: 1, defense: 'ft', before: { ca: 0.9, asr: 1.0, ra: 0 }, metrics: { ca: 0.9, asr: 0.5, ra: 0 } }),
    ]);
    const none = t.blocks[0].rows[0].cells.get('none')!.asr!;
    assert.equal(none.n, 2);
    assert.ok(Math.abs(none.mean - 0.9) < 1e-12);
  });
  it('splits a model x attack by configuration, naming only what differs', () => {
    const t = paperTable('d', [
      job('attack', { attack: 'flowmur', attackOptions: { epochs: 10, lr: 0.001 }, metrics: { ca: 0.9, asr: 0.3, ra: 0 } }),
      job('attack', { attack: 'flowmur', attackOptions: { epochs: 40, lr: 0.001 }, metrics: { ca: 0.9, asr: 0.5, ra: 0 } }),
      job('attack', { attack: 'badnets', attackOptions: { size: 5 }, metrics: { ca: 0.9, asr: 0.99, ra: 0 } }),
    ]);
    assert.deepEqual(
      t.blocks[0].rows.map((r) => r.label),
      ['Audio BadNets', 'FlowMur (epochs=10)', 'FlowMur (epochs=40)'],
    );
  });
  it('leaves failed jobs out', () => {
    const t = paperTable('d', [job('attack', { attack: 'badnets', status: 'failed', metrics: { ca: 0, asr: 0, ra: 0 } })]);
    assert.equal(t.blocks.length, 0);
  });
});
