// Grid files and their manifests: validation messages name the line, the field and the valid choices;
// expansion is stable (same grid, same ids), sensitive (a changed option or seed, a new id), and the
// dependencies and shards come out right.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Grid, GridError, loadGrid, parseGrid } from './grid-file.ts';
import { canonicalJson, expandGrid, jobId, parseShard, shardJobs } from './manifest.ts';
import { configOfResult, resultJob } from './result.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const file = path.join(root, 'grids', 'test.yaml');

const base = `
name: unit
data:
  - name: tiny-scd10
    synth: { preset: tiny, words: scd10, seed: 1 }
models: [resnet, lstm]
attacks:
  - badnets
  - { attack: jingleback, options: { style: 3 }, models: [resnet] }
attackSeeds: [0, 1]
epochs: 1
defenses:
  - { defense: ft, recipe: paper }
  - { defense: gnft, recipe: default, options: { epochs: 2 } }
cleanRatios: [0.05, 0.1]
seeds: [0, 1]
`;

const grid = (text: string, o = {}) => parseGrid(text, file, o);
const errorOf = (text: string): string => {
  try {
    grid(text);
  } catch (e) {
    assert.ok(e instanceof GridError, `a GridError, got ${e}`);
    return (e as Error).message;
  }
  assert.fail('the grid was accepted');
};

describe('grid files', () => {
  it('expand to synth, attack and defense jobs with the right counts and dependencies', () => {
    const m = expandGrid(grid(base));
    // attacks: resnet x (badnets, jingleback) + lstm x badnets = 3, x 2 attack seeds = 6 rows
    assert.deepEqual(m.counts, { jobs: 1 + 6 + 6 * 2 * 2 * 2, synth: 1, attack: 6, defense: 48, rows: 6 });
    const synth = m.jobs.filter((j) => j.kind === 'synth');
    const attacks = m.jobs.filter((j) => j.kind === 'attack');
    for (const a of attacks) assert.deepEqual(a.dependsOn, [synth[0].id]);
    for (const row of m.rows) {
      assert.equal(row.defenses.length, 8);
      for (const id of row.defenses) {
        const d = m.jobs.find((j) => j.id === id);
        assert.deepEqual(d?.dependsOn, [row.attack]);
        assert.equal(d?.row, row.index);
      }
    }
    assert.equal(new Set(m.jobs.map((j) => j.id)).size, m.jobs.length, 'ids are unique');
    for (const j of m.jobs) assert.match(j.id, /^[0-9a-f]{16}$/);
    assert.equal(
      attacks.filter((a) => a.config.kind === 'attack' && a.config.attack === 'jingleback' && a.config.model === 'lstm').length,
      0,
      'models: restricts',
    );
  });

  it('give the same ids for the same grid, whatever the key order or spelling of numbers', () => {
    const a = expandGrid(grid(base));
    const reordered = base.replace(
      '{ defense: gnft, recipe: default, options: { epochs: 2 } }',
      '{ options: { epochs: 2.0 }, recipe: default, defense: gnft }',
    );
    const b = expandGrid(grid(reordered));
    assert.deepEqual(
      b.jobs.map((j) => j.id),
      a.jobs.map((j) => j.id),
    );
    // The id is the hash of the canonical config: recomputable from a result's job.
    for (const j of a.jobs) assert.equal(jobId(j.config), j.id);
    const d = a.jobs.find((j) => j.kind === 'defense');
    assert.ok(d && d.config.kind === 'defense');
    assert.equal(jobId(configOfResult(resultJob(d.config, '/somewhere/data'))), d.id, "a result's job without data hashes to its id");
    assert.equal(canonicalJson({ b: 1, a: { d: [1, { f: 2, e: 3 }], c: undefined } }), '{"a":{"d":[1,{"e":3,"f":2}]},"b":1}');
  });

  it('give new ids when an option, a seed, a clean ratio or the data change, and only for the jobs concerned', () => {
    const ids = (text: string) => new Set(expandGrid(grid(text)).jobs.map((j) => j.id));
    const a = ids(base);
    const changedOption = ids(base.replace('options: { epochs: 2 }', 'options: { epochs: 3 }'));
    const kept = [...changedOption].filter((id) => a.has(id));
    // Synth, the 6 attacks and the 24 FT jobs stay; the 24 GN-FT jobs are new.
    assert.equal(kept.length, 1 + 6 + 24);
    assert.equal(changedOption.size - kept.length, 24);
    const changedSeed = ids(base.replace('seeds: [0, 1]', 'seeds: [0, 2]'));
    assert.equal([...changedSeed].filter((id) => !a.has(id)).length, 24, 'seed 2 replaces seed 1 in half the defense jobs');
    const changedAttackOption = ids(base.replace('style: 3', 'style: 2'));
    assert.equal([...changedAttackOption].filter((id) => !a.has(id)).length, 2 + 2 * 8, 'the two jingleback rows: their attack and defense jobs');
    const changedData = ids(base.replace('seed: 1 }', 'seed: 2 }'));
    assert.equal([...changedData].filter((id) => a.has(id)).length, 0, 'other data: every job is new');
    const changedRatio = ids(base.replace('[0.05, 0.1]', '[0.05, 0.2]'));
    assert.equal([...changedRatio].filter((id) => !a.has(id)).length, 24);
  });

  it('--data-root runs every entry on a real folder, under a name of its own', () => {
    const g = grid(base, { dataRoot: '/data/speech_commands_v0.01' });
    assert.deepEqual(g.data, [{ name: 'speech_commands_v0.01-scd10', words: 'scd10', path: '/data/speech_commands_v0.01' }]);
    const m = expandGrid(g);
    assert.equal(m.counts.synth, 0);
    assert.equal(m.counts.attack, 6);
    const synthIds = new Set(expandGrid(grid(base)).jobs.map((j) => j.id));
    assert.ok(
      m.jobs.every((j) => !synthIds.has(j.id)),
      'real data gives other ids than synthetic data',
    );
    // A path entry is resolved against the grid file's folder, with $VARIABLES from the environment.
    const p = grid(base.replace('synth: { preset: tiny, words: scd10, seed: 1 }', 'path: $SC/v1'), { env: { SC: 'datasets' } });
    assert.equal(p.data[0].path, path.join(path.dirname(file), 'datasets', 'v1'));
  });

  it('errors name the line, the field and the valid choices', () => {
    assert.match(
      errorOf(base.replace('- badnets', '- badnet')),
      /test\.yaml:8: attacks\[0\]: unknown attack 'badnet' \(did you mean 'badnets'\?\); choose one of badnets, ultrasonic, jingleback/,
    );
    assert.match(errorOf(base.replace('[resnet, lstm]', '[resnet, vgg]')), /:6: models\[1\]: unknown model 'vgg'; choose one of .*resnet, smallcnn/);
    assert.match(
      errorOf(base.replace('defense: ft,', 'defense: fine-tune,')),
      /:13: defenses\[0\]\.defense: unknown defense 'fine-tune'; choose one of ft, fp, gnft/,
    );
    assert.match(
      errorOf(base.replace('recipe: paper', 'recipe: papr')),
      /:13: defenses\[0\]\.recipe: unknown recipe of ft 'papr' \(did you mean 'paper'\?\); choose one of paper, default/,
    );
    assert.match(
      errorOf(base.replace('options: { epochs: 2 }', 'options: { epoch: 2 }')),
      /:14: defenses\[1\]\.options\.epoch: gnft has no option 'epoch' \(did you mean 'epochs'\?\)/,
    );
    assert.match(
      errorOf(base.replace('options: { epochs: 2 }', 'options: { epochs: -2 }')),
      /:14: defenses\[1\]\.options\.epochs: gnft: option epochs must be/,
    );
    assert.match(errorOf(base.replace('style: 3', 'style: 9')), /:9: attacks\[1\]\.options\.style: jingleback: option style must be/);
    assert.match(errorOf(base.replace('attackSeeds:', 'attackSeed:')), /:10: attackSeed: unknown field 'attackSeed' \(did you mean 'attackSeeds'\?\)/);
    assert.match(errorOf(base.replace('cleanRatios: [0.05, 0.1]', 'cleanRatios: [0.05, 1.5]')), /:15: cleanRatios\[1\]: must be a number in \(0, 1\]/);
    assert.match(errorOf(`${base}target: sheila\n`), /target: 'sheila' is not a word of scd10/);
    assert.match(
      errorOf(base.replace('preset: tiny', 'preset: huge')),
      /:5: data\[0\]\.synth\.preset: unknown synth preset 'huge'; choose one of tiny, quick, small, full/,
    );
    assert.match(errorOf(base.replace('models: [resnet] }', 'models: [kwt] }')), /attacks\[1\]\.models\[0\]: 'kwt' is not one of the grid's models/);
    assert.match(
      errorOf(base.replace('- badnets', '- { attack: ultrasonic, frontEnd: mfcc-16k }')),
      /attacks\[0\]\.frontEnd: ultrasonic on resnet: .*42000 Hz/,
    );
    assert.match(errorOf(base.replace('name: unit', 'name: a b')), /:2: name: use letters/);
    assert.match(errorOf(`${base}defenses: [ft]\n`), /test\.yaml:17: Map keys must be unique/);
    assert.match(errorOf(base.replace('  - { defense: ft, recipe: paper }', '  - none')), /'none' needs no entry/);
    assert.match(errorOf('name: x\n'), /data: the field 'data' is missing/);
    assert.match(
      errorOf('{ "name": "x", "data": [ { "name": "d", "path": "/p", "synth": {} } ], "models": ["resnet"], "attacks": ["badnets"], "defenses": ["ft"] }'),
      /data\[0\]: give exactly one of 'path'/,
    );
  });

  it('the grids in grids/ are valid and expand', () => {
    const dir = path.join(root, 'grids');
    const counts: Record<string, number> = {};
    for (const f of readdirSync(dir).filter((x) => /\.(ya?ml|json)$/.test(x))) {
      const g: Grid = loadGrid(path.join(dir, f));
      const m = expandGrid(g);
      counts[f] = m.counts.jobs;
      assert.ok(m.counts.defense > 0, f);
      // And on a real folder.
      assert.ok(expandGrid(loadGrid(path.join(dir, f), { dataRoot: '/data/speech_commands_v0.01' })).counts.synth === 0, f);
    }
    assert.ok(counts['tiny.yaml'] === 4, `tiny.yaml: ${counts['tiny.yaml']} jobs`);
    for (const t of ['table1.yaml', 'table2.yaml', 'table3.yaml', 'table4.yaml']) assert.ok(counts[t] > 0, t);
  });

  it('shards hold whole rows and the data they need, and together hold every job once', () => {
    const m = expandGrid(grid(base));
    assert.throws(() => parseShard('3/3'), /counts from 0/);
    assert.throws(() => parseShard('1-3'), /i\/N/);
    for (const n of [1, 2, 4, 7]) {
      const seen = new Map<string, number>();
      for (let i = 0; i < n; i++) {
        const jobs = shardJobs(m, parseShard(`${i}/${n}`));
        for (const j of jobs) if (j.kind !== 'synth') seen.set(j.id, (seen.get(j.id) ?? 0) + 1);
        const ids = new Set(jobs.map((j) => j.id));
        for (const j of jobs) for (const d of j.dependsOn) assert.ok(ids.has(d), `shard ${i}/${n}: ${j.id} needs ${d}, which is in the shard`);
        for (const row of m.rows) {
          const inShard = [row.attack, ...row.defenses].filter((id) => ids.has(id)).length;
          assert.ok(inShard === 0 || inShard === 1 + row.defenses.length, 'rows are whole');
        }
      }
      assert.equal(seen.size, m.jobs.length - 1);
      assert.ok([...seen.values()].every((c) => c === 1));
    }
  });
});
