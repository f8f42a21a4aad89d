// A grid whose model entry is the user's own TorchScript model (issue 33 item 3), on the committed fixture
// fixtures/torchscript/kws-wave16k-scd10.pt (raw one-second clips in, the 10 SCD-10 classes out):
//  1. a bad entry (missing file, a torch.save checkpoint, a class count the archive does not give, a class the
//     data lacks, attacks for a grid of TorchScript models only) is refused when the grid is read, before any
//     job, naming the field and the fix;
//  2. a one-row grid (import, then GN-FT and FT) runs end to end with `kwshield grid run`: the import job
//     measures CA and ASR/RA on the entry's triggered clips, each defense job writes a purified model.pt and
//     its before/after metrics; the job ids follow the archive's bytes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { synthesizeSpeechCommands } from '../src/data/synth.ts';
import { SCD10_WORDS } from '../src/data/words.ts';
import { GridError, parseGrid } from '../src/experiments/grid/grid-file.ts';
import { expandGrid } from '../src/experiments/grid/manifest.ts';
import type { JobResult } from '../src/experiments/grid/result.ts';
import { memory } from '../src/torch/index.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'kwshield');
const fixtures = path.join(root, 'fixtures', 'torchscript');
const work = mkdtempSync(path.join(tmpdir(), 'kws-grid-ts-'));
const data = path.join(work, 'data');
const triggered = path.join(work, 'triggered');
const env = { ...process.env, KWSHIELD_CACHE: path.join(work, 'cache'), KWSHIELD_THREADS: '1' };

/** A grid on the tiny data folder with one model entry (YAML lines under `models:`). */
const gridText = (model: string[], extra: string[] = []) =>
  [
    'name: own-model',
    `data: [{ name: tiny-scd10, path: ${JSON.stringify(data)} }]`,
    'models:',
    ...model.map((l) => `  ${l}`),
    ...extra,
    'target: up',
    'defenses:',
    '  - { defense: gnft, recipe: default, options: { epochs: 2, holdout: 0 } }',
    '  - { defense: ft, recipe: paper, options: { epochs: 2 } }',
    'cleanRatios: [0.5]',
    '',
  ].join('\n');
const entry = (fields: string) => [`- { ${fields} }`];
const good = `torchscript: ${JSON.stringify(path.join(fixtures, 'kws-wave16k-scd10.pt'))}, input: waveform-16k-1s, classes: [${SCD10_WORDS.join(', ')}]`;

describe('grid files with a TorchScript model entry', () => {
  before(async () => {
    await synthesizeSpeechCommands({ out: data, preset: 'tiny', seed: 1 });
    // The user's "triggered" clips: a few test clips of three words, in the folders of their true words.
    for (const word of ['yes', 'no', 'left']) {
      mkdirSync(path.join(triggered, word), { recursive: true });
      for (const f of readdirSync(path.join(data, word)).slice(0, 2)) copyFileSync(path.join(data, word, f), path.join(triggered, word, f));
    }
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('refuses a bad entry when the grid is read, naming the field and the fix', () => {
    const file = path.join(work, 'bad.yaml');
    const refused = (model: string[], pattern: RegExp, extra: string[] = []) => {
      const live = memory().liveTensors;
      assert.throws(
        () => parseGrid(gridText(model, extra), file),
        (e: Error) => e instanceof GridError && pattern.test(e.message),
      );
      assert.equal(memory().liveTensors, live, 'a refused archive leaves no tensor behind');
    };
    refused(
      entry(`torchscript: missing.pt, input: waveform-16k-1s, classes: [${SCD10_WORDS.join(', ')}]`),
      /models\[0\]\.torchscript: .*missing\.pt is not a file; give the path of the TorchScript archive \(relative to the grid file\)/,
    );
    refused(
      entry(`torchscript: ${JSON.stringify(path.join(fixtures, 'kws-state-dict.pt'))}, input: waveform-16k-1s, classes: [${SCD10_WORDS.join(', ')}]`),
      /models\[0\]\.torchscript: .*kws-state-dict\.pt is a PyTorch archive without TorchScript code .*torch\.jit\.script/,
    );
    refused(
      entry(
        `torchscript: ${JSON.stringify(path.join(fixtures, 'kws-wave16k-scd10.pt'))}, input: waveform-16k-1s, classes: [${SCD10_WORDS.slice(0, 9).join(', ')}]`,
      ),
      /models\[0\]\.torchscript: .*outputs of shape \[2, 10\].*with 9 classes \(as many as 'classes' lists\)/,
    );
    refused(
      entry(`torchscript: ${JSON.stringify(path.join(fixtures, 'kws-wave16k-scd10.pt'))}, input: mfcc-16k, classes: [${SCD10_WORDS.join(', ')}]`),
      /models\[0\]\.torchscript: .*cannot take a batch of inputs of shape \[batch, 101, 40\].*waveform-16k-1s/,
    );
    refused(
      entry(
        `torchscript: ${JSON.stringify(path.join(fixtures, 'kws-wave16k-scd10.pt'))}, input: waveform-16k-1s, classes: [${['banana', ...SCD10_WORDS.slice(1)].join(', ')}]`,
      ),
      /models\[0\]\.classes: banana is not a word of scd10 \(data entry tiny-scd10\); the classes must be word folders/,
    );
    refused(entry(`${good}, triggered: nowhere/`), /models\[0\]\.triggered: .*nowhere is not a folder; give the folder of your triggered clips/);
    refused(entry(good), /attacks: attacks apply to the built-in models the grid trains; .*leave 'attacks' out/, ['attacks: [badnets]']);
    refused(entry(`${good}, name: resnet`), /models\[0\]\.name: 'resnet' is a built-in model's name/);
  });

  it("expands to one row per data entry: an import job (attack 'own') whose id follows the archive's bytes, and its defense jobs", () => {
    const grid = parseGrid(gridText(entry(`${good}, name: my-kws`)), path.join(work, 'g.yaml'));
    assert.deepEqual(grid.models, []);
    assert.equal(grid.torchscript[0].name, 'my-kws');
    const manifest = expandGrid(grid);
    assert.deepEqual(manifest.counts, { jobs: 3, synth: 0, attack: 1, defense: 2, rows: 1 });
    const head = manifest.jobs[0];
    assert.equal(head.config.kind, 'attack');
    assert.match(head.label, /^import my-kws \(TorchScript\)/);
    const other = parseGrid(gridText(entry(`${good.replace('kws-wave16k-scd10', 'kws-wave16k-odd-scd10')}, name: my-kws`)), path.join(work, 'g.yaml'));
    assert.notEqual(expandGrid(other).jobs[0].id, head.id, 'another archive under the same name is another job');
  });

  it('runs end to end: import and measure, then GN-FT and FT purify the archive into TorchScript', () => {
    const grid = path.join(work, 'own.yaml');
    writeFileSync(grid, gridText(entry(`${good}, name: my-kws, triggered: ${JSON.stringify(triggered)}`)));
    const results = path.join(work, 'results');
    const r = spawnSync(process.execPath, [bin, 'grid', 'run', grid, '--results', results, '--json'], { encoding: 'utf8', env, cwd: root });
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop() as string);
    assert.deepEqual([summary.ok, summary.failed.length], [3, 0]);
    const all = readdirSync(results)
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(readFileSync(path.join(results, f), 'utf8')) as JobResult);
    const head = all.find((x) => x.job.kind === 'attack') as JobResult;
    assert.equal(head.job.attack, 'own');
    assert.equal(head.job.model, 'my-kws');
    assert.ok(existsSync(path.join(head.runs.model as string, 'model.pt')));
    for (const k of ['ca', 'asr', 'ra'] as const) assert.equal(typeof head.metrics?.[k], 'number', k);
    const defenses = all.filter((x) => x.job.kind === 'defense');
    assert.deepEqual(defenses.map((x) => x.job.kind === 'defense' && x.job.defense).sort(), ['ft', 'gnft']);
    for (const d of defenses) {
      assert.equal(d.status, 'ok', d.error);
      assert.deepEqual(d.before, head.metrics);
      assert.equal(typeof d.metrics?.asr, 'number');
      const manifest = JSON.parse(readFileSync(path.join(d.runs.model as string, 'model.json'), 'utf8'));
      assert.equal(manifest.model, 'torchscript');
      assert.ok(existsSync(path.join(d.runs.model as string, 'model.pt')), 'the purified model is TorchScript');
    }
  });
});
