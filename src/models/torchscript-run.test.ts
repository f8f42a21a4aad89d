// A run folder of the user's own model through checkpoint.ts's one loading path: saveModel writes model.pt with
// the model's current tensors (and records its sha256), loadModel reads it back as a TorchScriptModel with a
// spec whose neuron layers are the archive's, and model.json sections that cannot be used are refused.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { addInPlace, noGrad, type Tensor, tensor, tidy } from '../torch/index.ts';
import { loadModel, ModelFileError, readManifest, saveModel } from './checkpoint.ts';
import { loadTorchScriptModel, TorchScriptModel } from './torchscript.ts';
import { sha256Of } from './torchscript-run.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const archive = path.join(root, 'fixtures', 'torchscript', 'kws-scripted.pt');
const work = mkdtempSync(path.join(tmpdir(), 'kws-ts-run-'));
const classes = ['a', 'b', 'c', 'd'];
const manifestOf = (dir: string) => JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8'));

function input(): Tensor {
  const data = new Float32Array(4 * 1600);
  for (let i = 0; i < data.length; i++) data[i] = (((i * 7919) % 2001) - 1000) / 1024;
  return tensor(data, [4, 1600]);
}
const logits = (m: { forward(x: Tensor): Tensor }, x: Tensor) => tidy(() => noGrad(() => Array.from(m.forward(x).toFloat32Array())));

/** A TorchScript run of the fixture with one weight changed, as defend leaves it. */
function changedRun(dir: string): number[] {
  mkdirSync(dir);
  const model = loadTorchScriptModel(archive);
  noGrad(() => addInPlace(model.stateDict().get('classifier.bias') as Tensor, 0.5));
  const x = input();
  const expected = logits(model, x);
  saveModel(dir, model, {
    model: 'torchscript',
    config: {},
    frontEnd: 'waveform-16k-1s',
    inputShape: [1600],
    classes,
    torchscript: {
      archive: 'model.pt',
      sha256: '0'.repeat(64),
      source: archive,
      sourceSha256: sha256Of(archive),
      batchNorm: 'follows-mode',
      neuronLayers: ['conv', 'dw', 'hidden'],
      classifier: 'classifier',
      batchNorms: ['bn', 'bn_dw'],
      parameters: model.parameterCount(),
    },
  });
  model.dispose();
  x.dispose();
  return expected;
}

describe('a TorchScript run folder through loadModel/saveModel', () => {
  after(() => rmSync(work, { recursive: true, force: true }));

  it("saveModel writes model.pt with the model's tensors and records its sha256; loadModel gives the same logits", () => {
    const dir = path.join(work, 'run');
    const expected = changedRun(dir);
    assert.equal(manifestOf(dir).torchscript.sha256, sha256Of(path.join(dir, 'model.pt')));
    const { model, spec, manifest } = loadModel(dir);
    assert.ok(model instanceof TorchScriptModel);
    assert.equal(model.training, false);
    assert.equal(manifest.frontEnd, 'waveform-16k-1s');
    assert.equal(spec.inputKind, 'waveform');
    assert.deepEqual(spec.neuronLayers(model), ['conv', 'dw', 'hidden']);
    assert.throws(() => spec.build({ classes: 4 }), /loaded from its archive/);
    const x = input();
    const got = logits(model, x);
    assert.ok(Math.max(...got.map((v, i) => Math.abs(v - expected[i]))) <= 1e-6);
    const original = loadTorchScriptModel(archive);
    assert.ok(Math.max(...logits(original, x).map((v, i) => Math.abs(v - expected[i]))) > 0.1, 'the change reached model.pt');
    for (const m of [model, original]) m.dispose();
    x.dispose();
  });

  it('refuses a model.json whose torchscript section cannot be used, and a model.pt that is not the recorded file', () => {
    const dir = path.join(work, 'bad');
    changedRun(dir);
    const good = manifestOf(dir);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ torchscript: undefined }, /needs a "torchscript" section.*kwshield import/],
      [{ torchscript: { ...good.torchscript, archive: '../elsewhere.pt' } }, /must name a file in the run folder/],
      [{ torchscript: { ...good.torchscript, sha256: 'abc' } }, /64 hex digits/],
      [{ frontEnd: 'mel-128' }, /unknown front-end 'mel-128'/],
    ];
    for (const [change, message] of cases) {
      writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ ...good, ...change }));
      assert.throws(
        () => readManifest(dir),
        (e: Error) => e instanceof ModelFileError && message.test(e.message),
        JSON.stringify(change),
      );
    }
    writeFileSync(
      path.join(dir, 'model.json'),
      JSON.stringify({ ...good, torchscript: { ...good.torchscript, sha256: sha256Of(archive).replace(/^./, 'f') } }),
    );
    assert.throws(() => loadModel(dir), /not the archive kwshield wrote/);
  });
});
