// The user's own model end to end (issue 33): a TorchScript archive (fixtures/torchscript/kws-wave16k-scd10.pt,
// made by scripts/make-torchscript-fixture.py: raw one-second clips in, the 10 SCD-10 classes out) imported
// as a run folder, refused with a reason for every bad input (nothing written), evaluated on a tiny data
// folder and on a folder of triggered clips, purified by GN-FT into a model.pt that reloads (in kwshield and,
// when a Python with torch is found, in PyTorch) to the purified model's logits, pruned by FP through the
// engine's hooks, and refused by a defense whose layer the archive's code never calls.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readWav } from '../src/audio/wav.ts';
import { synthesizeSpeechCommands } from '../src/data/synth.ts';
import { SCD10_WORDS } from '../src/data/words.ts';
import { ImportRunError, importRun } from '../src/experiments/import-run.ts';
import { loadModel, ModelFileError, saveModel } from '../src/models/checkpoint.ts';
import { buildModel } from '../src/models/index.ts';
import { loadTorchScriptModel } from '../src/models/torchscript.ts';
import { fillInPlace, loadSafetensors, memory, noGrad, type Tensor, tensor, tidy } from '../src/torch/index.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'kwshield');
const fixtures = path.join(root, 'fixtures', 'torchscript');
const archive = path.join(fixtures, 'kws-wave16k-scd10.pt');
const work = mkdtempSync(path.join(tmpdir(), 'kws-own-'));
const env = { ...process.env, KWSHIELD_CACHE: path.join(work, 'cache'), KWSHIELD_THREADS: '1' };
const data = path.join(work, 'data');
const classes = SCD10_WORDS.join(',');

function run(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env, cwd: root });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout.trim().split('\n').pop() as string) };
}

/** One-second clips as the data folder holds them, cut or zero-padded to 16000 samples. */
async function waves(files: string[]): Promise<Tensor> {
  const out = new Float32Array(files.length * 16000);
  for (const [i, f] of files.entries()) out.set((await readWav(f)).samples.subarray(0, 16000), i * 16000);
  return tensor(out, [files.length, 16000]);
}

/** The archive's predictions on WAV files, computed here without kwshield's data pipeline. */
async function predictionsOf(file: string, wavs: string[]): Promise<number[]> {
  const model = loadTorchScriptModel(file);
  const x = await waves(wavs);
  try {
    return tidy(() => noGrad(() => model.forward(x).argmax(1).toArray() as number[]));
  } finally {
    x.dispose();
    model.dispose();
  }
}

const clipsOf = (dir: string, split?: 'test') => {
  const listed = split ? new Set(readFileSync(path.join(dir, 'testing_list.txt'), 'utf8').split('\n').filter(Boolean)) : null;
  return SCD10_WORDS.flatMap((w, label) =>
    existsSync(path.join(dir, w))
      ? readdirSync(path.join(dir, w))
          .filter((f) => f.endsWith('.wav') && (!listed || listed.has(`${w}/${f}`)))
          .sort()
          .map((f) => ({ file: path.join(dir, w, f), label }))
      : [],
  );
};

/** What `dir`'s parent holds besides what it held before: a refused import must leave nothing, not even a temp folder. */
const leftovers = (before: string[]) => readdirSync(work).filter((n) => !before.includes(n));

describe('your own model: TorchScript in, through every command, purified TorchScript out', () => {
  const imported = path.join(work, 'imported');
  before(async () => {
    await synthesizeSpeechCommands({ out: data, preset: 'tiny', seed: 1 });
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('kwshield import makes a run folder: model.pt (the same bytes), model.json, model.safetensors; says the archive is code', () => {
    const r = run(['import', '--torchscript', archive, '--input', 'waveform-16k-1s', '--classes', classes, '--out', imported, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /TorchScript archive is code.*only models you trust/);
    const result = r.json();
    assert.equal(result.batchNorm, 'follows-mode');
    assert.match(result.batchNormNote, /follows train\/eval \(scripted\)/);
    assert.deepEqual(readFileSync(path.join(imported, 'model.pt')), readFileSync(archive));
    const manifest = JSON.parse(readFileSync(path.join(imported, 'model.json'), 'utf8'));
    assert.equal(manifest.format, 'kwshield-model');
    assert.equal(manifest.model, 'torchscript');
    assert.equal(manifest.frontEnd, 'waveform-16k-1s');
    assert.deepEqual(manifest.inputShape, [16000]);
    assert.deepEqual(manifest.classes, [...SCD10_WORDS]);
    assert.equal(manifest.torchscript.archive, 'model.pt');
    assert.equal(manifest.torchscript.sha256, result.sha256);
    assert.equal(manifest.torchscript.source, archive);
    assert.equal(manifest.torchscript.batchNorm, 'follows-mode');
    assert.deepEqual(manifest.torchscript.neuronLayers, ['conv', 'dw', 'hidden']);
    assert.equal(manifest.torchscript.classifier, 'classifier');
    const weights = loadSafetensors(path.join(imported, 'model.safetensors'));
    assert.ok(
      ['filterbank', 'conv.weight', 'dw.weight', 'bn.running_mean', 'classifier.bias'].every((k) => weights.tensors.has(k)),
      "the archive's own names",
    );
    for (const t of weights.tensors.values()) t.dispose();
    // a finished run is not replaced without --force
    const again = run(['import', '--torchscript', archive, '--input', 'waveform-16k-1s', '--classes', classes, '--out', imported]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already holds a finished run.*--force/);
    const traced = importRun({
      torchscript: path.join(fixtures, 'kws-traced-eval.pt'),
      input: 'waveform-16k-1s',
      classes: 'a,b,c,d',
      out: path.join(work, 'traced'),
    });
    assert.equal(traced.batchNorm, 'frozen-eval');
    assert.match(traced.batchNormNote, /frozen in eval mode.*trace in train mode/);
  });

  it('refuses, with the reason and the fix and before writing anything, every input it cannot use', () => {
    const text = path.join(work, 'not-an-archive.pt');
    writeFileSync(text, 'print("hello")\n');
    const nanArchive = path.join(work, 'nan.pt');
    const m = loadTorchScriptModel(archive);
    noGrad(() => fillInPlace(m.stateDict().get('classifier.bias') as Tensor, Number.NaN));
    m.save(nanArchive);
    m.dispose();
    const empty = path.join(work, 'empty-classes.txt');
    writeFileSync(empty, '# no names\n\n');
    const dupes = path.join(work, 'dup-classes.txt');
    writeFileSync(dupes, `${SCD10_WORDS.join('\n')}\nyes\n`);
    const aFile = path.join(work, 'a-file');
    writeFileSync(aFile, '');
    const cases: [Partial<Parameters<typeof importRun>[0]>, RegExp][] = [
      [{ torchscript: path.join(fixtures, 'kws-state-dict.pt') }, /torch\.save\(\) checkpoint.*torch\.jit\.script\(model\)\.save/],
      [{ torchscript: text }, /not a TorchScript archive.*torch\.jit\.script/],
      [{ torchscript: path.join(work, 'nowhere.pt') }, /not found/],
      [{ classes: 'yes,no,up' }, /outputs of shape \[2, 10\].*3 classes/],
      [{ input: 'mfcc-16k' }, /cannot take a batch of inputs of shape \[batch, 101, 40\].*waveform-16k-1s/],
      [{ torchscript: nanArchive }, /NaN outputs/],
      [{ input: 'mel-128' }, /unknown input 'mel-128'.*waveform-16k-1s.*mfcc-16k/],
      [{ classes: path.join(work, 'classes.txt') }, /neither a file nor a comma-separated list/],
      [{ classes: empty }, /is empty/],
      [{ classes: dupes }, /lists yes more than once/],
      [{ classes: 'yes,,no' }, /empty class name/],
      [{ out: path.join(aFile, 'run') }, /is a file, not a folder/],
    ];
    const held = readdirSync(work);
    for (const [change, message] of cases) {
      const out = path.join(work, 'refused');
      assert.throws(
        () => importRun({ torchscript: archive, input: 'waveform-16k-1s', classes, out, ...change }),
        (e: Error) => e instanceof ImportRunError && message.test(e.message),
        JSON.stringify(change),
      );
      assert.deepEqual(leftovers(held), [], `nothing written for ${JSON.stringify(change)}`);
    }
    // the CLI: exit 1 with the message, no stack trace, nothing written
    const r = run(['import', '--torchscript', archive, '--input', 'waveform-16k-1s', '--classes', 'yes,no,up', '--out', path.join(work, 'refused')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /3 classes/);
    assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/);
    assert.deepEqual(leftovers(held), []);
  });

  it('loadModel runs only the archive model.json recorded (an archive is code)', () => {
    const copy = path.join(work, 'swapped');
    cpSync(imported, copy, { recursive: true });
    copyFileSync(path.join(fixtures, 'kws-scripted.pt'), path.join(copy, 'model.pt'));
    assert.throws(
      () => loadModel(copy),
      (e: Error) => e instanceof ModelFileError && /not the archive kwshield wrote.*re-import/.test(e.message),
    );
  });

  it('eval: clean accuracy of the archive on the raw clips, the same predictions as the archive on the WAV files', async () => {
    const r = run(['eval', '--model', imported, '--data', data, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const clips = clipsOf(data, 'test');
    const predicted = await predictionsOf(
      archive,
      clips.map((c) => c.file),
    );
    const confusion = SCD10_WORDS.map(() => SCD10_WORDS.map(() => 0));
    clips.forEach((c, i) => confusion[c.label][predicted[i]]++);
    assert.equal(r.json().clips, clips.length);
    assert.deepEqual(r.json().confusion, confusion);
  });

  it('eval --triggered DIR --target WORD: ASR and RA on your own clips, for a TorchScript run and a built-in one', async () => {
    // A "triggered" folder: test clips of three words (their true words), no 'up' clip.
    const triggered = path.join(work, 'triggered');
    const picked = clipsOf(data, 'test').filter((c) => ['yes', 'down', 'stop'].includes(SCD10_WORDS[c.label]));
    for (const c of picked) {
      mkdirSync(path.join(triggered, SCD10_WORDS[c.label]), { recursive: true });
      copyFileSync(c.file, path.join(triggered, SCD10_WORDS[c.label], path.basename(c.file)));
    }
    const files = picked.map((c) => path.join(triggered, SCD10_WORDS[c.label], path.basename(c.file)));
    const predicted = await predictionsOf(archive, files);
    const up = SCD10_WORDS.indexOf('up');
    const r = run(['eval', '--model', imported, '--data', data, '--triggered', triggered, '--target', 'up', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const t = r.json().triggered;
    assert.equal(t.clips, picked.length);
    assert.equal(t.asr, predicted.filter((p) => p === up).length / picked.length);
    assert.equal(t.ra, predicted.filter((p, i) => p === picked[i].label).length / picked.length);
    // a built-in run takes it too
    const builtIn = path.join(work, 'smallcnn');
    mkdirSync(builtIn);
    const model = buildModel('smallcnn', { classes: 10 });
    saveModel(builtIn, model, { model: 'smallcnn', config: {}, frontEnd: 'mfcc-16k', inputShape: [101, 40], classes: [...SCD10_WORDS] });
    model.dispose();
    const b = run(['eval', '--model', builtIn, '--data', data, '--triggered', triggered, '--target', 'up', '--json']);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(b.json().triggered.clips, picked.length);
    // refusals: a word the model does not classify, a target that is not a class, --target alone
    mkdirSync(path.join(triggered, 'banana'));
    writeFileSync(path.join(triggered, 'banana', 'x.wav'), readFileSync(files[0]));
    const unknownWord = run(['eval', '--model', imported, '--data', data, '--triggered', triggered, '--target', 'up']);
    assert.equal(unknownWord.code, 1);
    assert.match(unknownWord.stderr, /word folders the model does not classify \(banana\)/);
    const badTarget = run(['eval', '--model', imported, '--data', data, '--triggered', triggered, '--target', 'banana']);
    assert.match(badTarget.stderr, /--target 'banana' is not one of the model's classes/);
    assert.equal(run(['eval', '--model', imported, '--data', data, '--target', 'up']).code, 2);
  });

  it('defend --defense gnft writes the purified model as TorchScript: model.pt reloads to the purified logits, in kwshield and in PyTorch', () => {
    const out = path.join(work, 'gnft');
    const r = run(['defend', '--model', imported, '--data', data, '--defense', 'gnft', '-o', 'epochs=2', '--clean-ratio', '0.5', '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const manifest = JSON.parse(readFileSync(path.join(out, 'model.json'), 'utf8'));
    assert.equal(manifest.model, 'torchscript');
    assert.notEqual(manifest.torchscript.sha256, JSON.parse(readFileSync(path.join(imported, 'model.json'), 'utf8')).torchscript.sha256);
    // The purified model as kwshield computed it: the original archive with the defense's tensors
    // (model.safetensors, written from the purified model's state dict) loaded into it.
    const purified = loadTorchScriptModel(archive);
    const saved = loadSafetensors(path.join(out, 'model.safetensors'));
    purified.loadStateDict(saved.tensors);
    for (const t of saved.tensors.values()) t.dispose();
    const reloaded = loadModel(out).model;
    const original = loadTorchScriptModel(archive);
    const x = tidy(() => {
      const d = new Float32Array(4 * 16000);
      for (let i = 0; i < d.length; i++) d[i] = (((i * 7919) % 2001) - 1000) / 4096;
      return tensor(d, [4, 16000]);
    });
    const logits = (m: { forward(x: Tensor): Tensor }) => tidy(() => noGrad(() => Array.from(m.forward(x).toFloat32Array())));
    const [a, b, c] = [logits(purified), logits(reloaded), logits(original)];
    const maxDiff = (p: number[], q: number[]) => Math.max(...p.map((v, i) => Math.abs(v - q[i])));
    assert.ok(maxDiff(a, b) <= 1e-5, `model.pt gives the purified logits (diff ${maxDiff(a, b)})`);
    assert.ok(maxDiff(a, c) > 1e-3, 'the defense changed the model');
    for (const m of [purified, reloaded, original]) m.dispose();
    const py = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' });
    if (py.status === 0) {
      const script = [
        'import sys, torch',
        'm = torch.jit.load(sys.argv[1]).eval()',
        'i = torch.arange(4 * 16000, dtype=torch.int64).reshape(4, 16000)',
        'x = (((i * 7919) % 2001) - 1000).to(torch.float32) / 4096',
        'print(" ".join(repr(v) for v in m(x).detach().flatten().tolist()))',
      ].join('\n');
      const p = spawnSync('/usr/bin/python3', ['-c', script, path.join(out, 'model.pt')], { encoding: 'utf8' });
      assert.equal(p.status, 0, p.stderr);
      const torchLogits = p.stdout.trim().split(' ').map(Number);
      assert.ok(maxDiff(a, torchLogits) <= 1e-5, `torch.jit.load gives kwshield's logits (diff ${maxDiff(a, torchLogits)})`);
    } else {
      process.stderr.write('own-model.test: no Python with torch; the PyTorch reload check is skipped\n');
    }
    x.dispose();
  });

  it('a defense that hooks a layer runs on an archive whose code calls that layer, and refuses one whose code does not, naming it, before any work', () => {
    const fp = path.join(work, 'fp');
    const ok = run(['defend', '--model', imported, '--data', data, '--defense', 'fp', '--clean-ratio', '0.5', '--out', fp, '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(ok.json().report.details, 'fp reports what it pruned');
    loadModel(fp).model.dispose();
    // kws-wave16k-odd-scd10.pt: its last conv ('dw') is used through F.conv2d on its weight, never called
    const odd = path.join(work, 'odd');
    importRun({ torchscript: path.join(fixtures, 'kws-wave16k-odd-scd10.pt'), input: 'waveform-16k-1s', classes, out: odd });
    for (const defense of ['fp', 'clp']) {
      const out = path.join(work, `odd-${defense}`);
      const r = run(['defend', '--model', odd, '--data', data, '--defense', defense, '--out', out]);
      assert.equal(r.code, 1, defense);
      assert.match(r.stderr, /forward hook on 'dw'/, defense);
      assert.equal(existsSync(out), false, `nothing written for ${defense}`);
    }
  });

  it('live tensor count is flat over repeated loads and forwards of an imported run', () => {
    const x = tensor(new Float32Array(2 * 16000), [2, 16000]);
    const once = () => {
      const { model } = loadModel(imported);
      tidy(() => {
        noGrad(() => model.forward(x));
      });
      model.dispose();
    };
    once();
    const start = memory().liveTensors;
    for (let i = 0; i < 5; i++) once();
    assert.equal(memory().liveTensors, start);
    x.dispose();
  });
});
