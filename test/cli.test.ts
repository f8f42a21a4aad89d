// The kwshield command end to end on a tiny synthetic set: exit codes, --json, run folders, resume
// after kill -9, and clear errors for bad inputs.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { kwshieldBin as bin, cliRunner, repoRoot as root } from './helpers/cli-run.ts';

const work = mkdtempSync(path.join(tmpdir(), 'kws-cli-'));
const env = { ...process.env, KWSHIELD_CACHE: path.join(work, 'cache'), KWSHIELD_THREADS: '2' };

const run = cliRunner(env);

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
    // a data folder that does not exist is refused before any work, as a bad argument (cli/preflight.ts)
    const missing = run(['train', '--data', path.join(work, 'nowhere'), '--out', path.join(work, 'r0')]);
    assert.equal(missing.code, 2);
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

  it('attack writes a run with trigger, poison plan, metrics and examples; eval --attack-of measures it again', () => {
    const out = path.join(work, 'attack');
    const r = run(['attack', '--data', data, '--attack', 'jingleback', '--epochs', '1', '--examples', '1', '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const result = r.json();
    for (const f of ['model.json', 'model.safetensors', 'trigger.json', 'poison-plan.json', 'metrics.json', 'log.jsonl'])
      assert.ok(existsSync(path.join(out, f)), f);
    assert.equal(result.attack, 'jingleback');
    assert.equal(result.poisoned, Math.floor(0.1 * result.trainClips));
    for (const m of [result.backdoored, result.clean]) for (const k of ['ca', 'asr', 'ra']) assert.ok(m[k] >= 0 && m[k] <= 1, k);
    assert.equal(result.examples.filter((f: string) => f.endsWith('.wav')).length, 2, 'one clean/triggered pair');
    const plan = JSON.parse(readFileSync(path.join(out, 'poison-plan.json'), 'utf8'));
    assert.equal(plan.indices.length, result.poisoned);
    const e = run(['eval', '--model', out, '--data', data, '--attack-of', out, '--json']);
    assert.equal(e.code, 0, e.stderr);
    assert.equal(e.json().backdoor.asr, result.backdoored.asr);
    assert.equal(e.json().backdoor.der, 0.5, 'the backdoored model against itself: nothing changed');
    const again = run(['attack', '--data', data, '--attack', 'jingleback', '--epochs', '1', '--out', out]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already holds a finished run/);
  });

  it('attack refuses bad input with a message that names the fix', () => {
    const out = path.join(work, 'bad-attack');
    const unknown = run(['attack', '--data', data, '--attack', 'trojannn', '--out', out]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown attack 'trojannn'; choose one of badnets, ultrasonic, jingleback, daba, flowmur, pbsm, vsvc-dsp/);
    const ratio = run(['attack', '--data', data, '--attack', 'badnets', '--poison-ratio', '1.5', '--out', out]);
    assert.equal(ratio.code, 2);
    assert.match(ratio.stderr, /--poison-ratio must be a number in \(0, 1\)/);
    const target = run(['attack', '--data', data, '--attack', 'badnets', '--target', 'sheila', '--out', out]);
    assert.equal(target.code, 1);
    assert.match(target.stderr, /--target 'sheila' is not a word of the data \(yes, no, up/);
    const frontEnd = run(['attack', '--data', data, '--attack', 'ultrasonic', '--front-end', 'mfcc-16k', '--out', out]);
    assert.equal(frontEnd.code, 1);
    assert.match(frontEnd.stderr, /needs a sample rate above 42000 Hz.*use mfcc-44k/);
    const pool = path.join(work, 'empty-pool');
    spawnSync('mkdir', ['-p', pool]);
    const daba = run(['attack', '--data', data, '--attack', 'daba', '-o', `pool=${pool}`, '--epochs', '1', '--out', out, '--force']);
    assert.equal(daba.code, 1);
    assert.match(daba.stderr, /DABA pool folder .*empty-pool has no readable clips/);
    const option = run(['attack', '--data', data, '--attack', 'badnets', '-o', 'size', '--out', out]);
    assert.equal(option.code, 1);
    assert.match(option.stderr, /option 'size' is not key=value/);
  });

  it('defend purifies a model without ever reading the test split, and measures before/after with --attack-of', () => {
    // A copy of the data whose test clips are all unreadable: a defense must not need them.
    const blind = path.join(work, 'blind-data');
    spawnSync('cp', ['-r', data, blind]);
    const tests = readFileSync(path.join(blind, 'testing_list.txt'), 'utf8').split('\n').filter(Boolean);
    for (const f of tests) writeFileSync(path.join(blind, f), 'not a wav any more');
    const attackRun = path.join(work, 'attack');
    const out = path.join(work, 'defended');
    const r = run(['defend', '--model', attackRun, '--data', blind, '--defense', 'gnft', '--clean-ratio', '0.5', '-o', 'epochs=2', '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.json().cleanClips > 0);
    assert.equal(r.json().before, undefined, 'no test-split measurement without --attack-of');
    for (const f of ['model.json', 'model.safetensors', 'metrics.json']) assert.ok(existsSync(path.join(out, f)), f);
    assert.equal(run(['eval', '--model', out, '--data', data]).code, 0, 'the purified model is an ordinary run folder');
    const measured = run([
      'defend',
      '--model',
      attackRun,
      '--data',
      data,
      '--defense',
      'ft',
      '--clean-ratio',
      '0.5',
      '-o',
      'epochs=1',
      '--attack-of',
      attackRun,
      '--out',
      path.join(work, 'defended-ft'),
      '--json',
    ]);
    assert.equal(measured.code, 0, measured.stderr);
    const m = measured.json();
    for (const k of ['ca', 'asr', 'ra']) assert.ok(m.before[k] >= 0 && m.after[k] >= 0, k);
    assert.ok(m.der >= 0 && m.der <= 1);
  });

  it('defend refuses bad options, clean ratios and model folders with a clear message', () => {
    const attackRun = path.join(work, 'attack');
    const out = path.join(work, 'bad-defend');
    const cases: [string[], number, RegExp][] = [
      [['-o', 'r=-0.1'], 1, /gnft: option r must be a number >= 0, got "-0.1"/],
      [['-o', 'alpha=1.5'], 1, /gnft: option alpha must be a number >= 0 and <= 1, got "1.5"/],
      [['--clean-ratio', '0'], 2, /--clean-ratio must be a number in \(0, 1\]/],
      [['--recipe', 'magic'], 2, /--recipe must be default or paper/],
    ];
    for (const [extra, code, message] of cases) {
      const r = run(['defend', '--model', attackRun, '--data', data, '--defense', 'gnft', '--out', out, ...extra]);
      assert.equal(r.code, code, extra.join(' '));
      assert.match(r.stderr, message);
    }
    const notRun = run(['defend', '--model', data, '--data', data, '--defense', 'ft', '--out', out]);
    assert.equal(notRun.code, 1);
    assert.match(notRun.stderr, /model\.json not found: --model must be a run folder/);
    const unknown = run(['defend', '--model', attackRun, '--data', data, '--defense', 'prayer', '--out', out]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown defense 'prayer'; choose one of ft, fp, gnft/);
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
  it('two attacks started side by side on one cache train their shared clean model once', async () => {
    const sharedEnv = { ...env, KWSHIELD_CACHE: path.join(work, 'shared-cache'), KWSHIELD_THREADS: '1' };
    const attack = (name: string) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const args = [bin, 'attack', '--data', data, '--attack', name, '--epochs', '2', '--out', path.join(work, `side-${name}`)];
        const child = spawn(process.execPath, args, { env: sharedEnv, cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (d) => {
          stderr += d;
        });
        child.on('exit', (code) => resolve({ code, stderr }));
      });
    const results = await Promise.all([attack('badnets'), attack('jingleback')]);
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const trained = results.filter((r) => r.stderr.includes('training the clean resnet'));
    const waited = results.filter((r) => /waiting for the clean resnet in .*, being trained by pid \d+/.test(r.stderr));
    assert.equal(trained.length, 1, 'exactly one of the two trains the clean model');
    assert.equal(waited.length, 1, 'the other says whom it waits for');
    const cleanRuns = path.join(sharedEnv.KWSHIELD_CACHE, 'clean-runs');
    const [dir] = readdirSync(cleanRuns).filter((f) => !f.endsWith('.lock'));
    const epochs = readFileSync(path.join(cleanRuns, dir, 'log.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"event":"epoch"'));
    assert.equal(epochs.length, 2, "the clean model's log has each of its 2 epochs once");
    assert.ok(!existsSync(path.join(cleanRuns, `${dir}.lock`)), 'the lock is released');
  });
});
