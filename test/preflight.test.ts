// Checks before work: each command refuses a bad output or input before it trains or loads anything: no run
// folder written, and the refusal comes in seconds (a run that got as far as training would take minutes).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'kwshield');
const work = mkdtempSync(path.join(tmpdir(), 'kws-preflight-'));
const words = ['yes', 'no', 'up', 'down', 'left', 'right', 'on', 'off', 'stop', 'go'];
const data = path.join(work, 'data');
const run = path.join(work, 'imported');

function kws(args: string[]) {
  const started = Date.now();
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, KWSHIELD_CACHE: path.join(work, 'cache') } });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout, seconds: (Date.now() - started) / 1000 };
}

/** Refused as a usage error (exit 2), naming `names`, quickly, leaving `out` unmade. */
function assertRefused(r: ReturnType<typeof kws>, names: RegExp, out?: string) {
  assert.equal(r.code, 2, `exit ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, names);
  assert.ok(r.seconds < 30, `took ${r.seconds} s: work started before the check`);
  if (out) assert.ok(!existsSync(out), `${out} was written`);
}

describe('checks before work', () => {
  before(() => {
    // A Speech Commands layout: the checks look at folders and file names only, so empty clips do.
    for (const w of words) {
      mkdirSync(path.join(data, w), { recursive: true });
      writeFileSync(path.join(data, w, 'a.wav'), '');
    }
    const imported = kws([
      'import',
      '--torchscript',
      'fixtures/torchscript/kws-wave16k-scd10.pt',
      '--input',
      'waveform-16k-1s',
      '--classes',
      words.join(','),
      '--out',
      run,
    ]);
    assert.equal(imported.code, 0, imported.stderr);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('defend refuses an output it cannot write before purifying', () => {
    assertRefused(kws(['defend', '--model', run, '--data', data, '--defense', 'gnft', '--out', '/proc/kws-purified']), /\/proc\/kws-purified: cannot write/);
  });

  it('train refuses an output that is a file, and zero epochs', () => {
    const file = path.join(work, 'a-file');
    writeFileSync(file, 'x');
    assertRefused(kws(['train', '--data', data, '--out', file]), /is a file, not a folder/);
    const out = path.join(work, 'never');
    assertRefused(kws(['train', '--data', data, '--epochs', '0', '--out', out]), /--epochs must be a whole number greater than 0/, out);
  });

  it('attack refuses a data folder that does not exist or holds no words', () => {
    const out = path.join(work, 'attack');
    assertRefused(kws(['attack', '--data', path.join(work, 'missing'), '--attack', 'badnets', '--out', out]), /missing does not exist; .*data synth/, out);
    const empty = path.join(work, 'empty');
    mkdirSync(empty);
    assertRefused(kws(['attack', '--data', empty, '--attack', 'badnets', '--out', out]), /no word folders with WAV clips/, out);
  });

  it("defend refuses data without the model's words", () => {
    const partial = path.join(work, 'partial');
    for (const w of ['yes', 'no']) {
      mkdirSync(path.join(partial, w), { recursive: true });
      writeFileSync(path.join(partial, w, 'a.wav'), '');
    }
    const out = path.join(work, 'purified');
    assertRefused(kws(['defend', '--model', run, '--data', partial, '--defense', 'ft', '--out', out]), /has no clips of 'up', 'down'/, out);
  });

  it('grid expand and grid run refuse a data entry whose folder does not exist', () => {
    const grid = path.join(work, 'g.yaml');
    writeFileSync(
      grid,
      ['name: g', `data: [{ name: mine, path: ${path.join(work, 'nowhere')}, words: scd10 }]`, 'models: [resnet]', 'attacks: [badnets]', 'defenses: [ft]'].join(
        '\n',
      ),
    );
    assertRefused(kws(['grid', 'expand', grid]), /data entry 'mine' \(path\) .*nowhere does not exist/);
    const results = path.join(work, 'results');
    assertRefused(kws(['grid', 'run', grid, '--results', results]), /nowhere does not exist/, results);
  });

  it('report and features refuse an output they cannot write', () => {
    assertRefused(kws(['report', run, '--out', '/proc/kws-report.html']), /cannot write in \/proc/);
    assertRefused(kws(['features', '--front-end', 'mfcc-16k', '--in', path.join(data, 'yes'), '--out', '/proc/f.safetensors']), /cannot write in \/proc/);
  });

  it('leaves no probe file behind', () => {
    assert.deepEqual(
      readdirSync(work).filter((f) => f.startsWith('.kwshield-write-check')),
      [],
    );
  });
});
