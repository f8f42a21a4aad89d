// The kwshield command end to end on a tiny synthetic set: exit codes, --json, run folders, resume
// after kill -9, and clear errors for bad inputs.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'kwshield');
const work = mkdtempSync(path.join(tmpdir(), 'kws-cli-'));
const env = { ...process.env, KWSHIELD_CACHE: path.join(work, 'cache'), KWSHIELD_THREADS: '2' };

function run(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env, cwd: root });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout.trim().split('\n').pop() as string) };
}

const data = path.join(work, 'data');

describe('kwshield CLI', () => {
  before(() => {
    const r = run(['data', 'synth', '--preset', 'tiny', '--out', data, '--seed', '1', '--json']);
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('usage errors exit 2, failures exit 1 with a message naming the input', () => {
    assert.equal(run(['train']).code, 2);
    assert.equal(run(['no-such-command']).code, 2);
    const missing = run(['train', '--data', path.join(work, 'nowhere'), '--out', path.join(work, 'r0')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nowhere/);
    assert.doesNotMatch(missing.stderr, /at .*\.ts:\d+/, 'no stack trace without --debug');
    const badModel = run(['train', '--data', data, '--model', 'vgg', '--out', path.join(work, 'r1')]);
    assert.equal(badModel.code, 1);
    assert.match(badModel.stderr, /unknown model 'vgg'.*resnet/);
    for (const [option, value] of [
      ['--batch-size', '0'],
      ['--batch-size', '2.5'],
      ['--lr', 'abc'],
      ['--lr', '-1'],
    ]) {
      const bad = run(['train', '--data', data, '--out', path.join(work, 'r2'), option, value]);
      assert.equal(bad.code, 2, `${option} ${value}`);
      assert.match(bad.stderr, new RegExp(`${option} must be .* greater than 0, got '${value}'`));
    }
  });

  it('data info counts the splits', () => {
    const r = run(['data', 'info', data, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const info = r.json();
    assert.ok(info.splits.train.clips > 0 && info.splits.test.clips > 0);
  });

  it('train writes a run folder; eval reproduces its accuracy; a finished run is not overwritten', () => {
    const out = path.join(work, 'run');
    const r = run(['train', '--data', data, '--out', out, '--epochs', '2', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const result = r.json();
    for (const f of ['model.safetensors', 'model.json', 'metrics.json', 'log.jsonl']) assert.ok(existsSync(path.join(out, f)), f);
    const e = run(['eval', '--model', out, '--data', data, '--json']);
    assert.equal(e.code, 0, e.stderr);
    assert.equal(e.json().cleanAccuracy, result.cleanAccuracy);
    const again = run(['train', '--data', data, '--out', out, '--epochs', '2']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already holds a finished run.*--force/);
  });

  it("train records the recipe it ran: the model's needs of `fast`, then --batch-size and --lr", () => {
    const settingsOf = (out: string) => JSON.parse(readFileSync(path.join(out, 'model.json'), 'utf8')).provenance.recipeSettings;
    const lstm = path.join(work, 'lstm');
    assert.equal(run(['train', '--data', data, '--model', 'lstm', '--out', lstm, '--epochs', '1']).code, 0);
    assert.equal(settingsOf(lstm).batchSize, 32, 'lstm trains with batch 32 under the fast recipe');
    assert.equal(settingsOf(lstm).lr, 1e-3);
    const custom = path.join(work, 'lstm-custom');
    assert.equal(run(['train', '--data', data, '--model', 'lstm', '--out', custom, '--epochs', '1', '--batch-size', '16', '--lr', '0.002']).code, 0);
    assert.deepEqual([settingsOf(custom).batchSize, settingsOf(custom).lr], [16, 0.002]);
  });

  it('bad model.json and mis-shaped weights give clear errors', () => {
    const out = path.join(work, 'run');
    const manifest = JSON.parse(readFileSync(path.join(out, 'model.json'), 'utf8'));
    const broken = path.join(work, 'broken');
    spawnSync('cp', ['-r', out, broken]);
    writeFileSync(path.join(broken, 'model.json'), JSON.stringify({ ...manifest, model: 'nonexistent' }));
    const r1 = run(['eval', '--model', broken, '--data', data]);
    assert.equal(r1.code, 1);
    assert.match(r1.stderr, /unknown model "nonexistent"/);
    writeFileSync(path.join(broken, 'model.json'), JSON.stringify({ ...manifest, classes: [...manifest.classes, 'extra'] }));
    const r2 = run(['eval', '--model', broken, '--data', data]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /fc\.weight: expected \[11, 384\], got \[10, 384\]/);
  });

  it('a run killed with SIGKILL resumes and finishes', async () => {
    const out = path.join(work, 'killed');
    const child = spawn(process.execPath, [bin, 'train', '--data', data, '--out', out, '--epochs', '6'], { env, cwd: root, stdio: 'ignore' });
    const state = path.join(out, 'checkpoint', 'state.json');
    const deadline = Date.now() + 120_000;
    while (!existsSync(state) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    assert.ok(existsSync(state), 'a checkpoint was written before the kill');
    assert.ok(!existsSync(path.join(out, 'model.json')), 'the run was cut before it finished');
    const resumed = run(['train', '--data', data, '--out', out, '--epochs', '6', '--resume', '--json']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal(resumed.json().epochs, 6);
  });
});
