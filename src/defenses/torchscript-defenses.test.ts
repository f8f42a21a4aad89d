// The activation- and mask-based defenses (FP, CLP, NGF, NFT, ANP) on a user's TorchScript model: each runs
// a short schedule on toy data through the same code as on a built-in model (forward hooks and per-call
// weight swaps reach the archive's layers through TorchScriptModel's hooked forward), changes the archive,
// and leaves it loadable with finite weights.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { disposeFeatureSet, type FeatureSet, makeFeatureSet } from '../data/feature-set.ts';
import { loadTorchScriptModel, type TorchScriptModel } from '../models/torchscript.ts';
import type { OptionValue } from '../options/options.ts';
import { all, isfinite, manualSeed, memory, noGrad, randn, type Tensor, tidy } from '../torch/index.ts';
import { getDefense } from './index.ts';
import type { DefenseReport } from './types.ts';

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'torchscript');
const archives = {
  kws: { file: path.join(fixtures, 'kws-scripted.pt'), shape: [1600], classes: ['a', 'b', 'c', 'd'], scale: 0.5 },
  nested: { file: path.join(fixtures, 'kws-nested-scripted.pt'), shape: [1, 12, 10], classes: ['a', 'b', 'c'], scale: 1 },
  odd: { file: path.join(fixtures, 'kws-odd-scripted.pt'), shape: [1, 12, 10], classes: ['a', 'b', 'c'], scale: 1 },
};

function toyData(which: keyof typeof archives, n: number): FeatureSet {
  const a = archives[which];
  return makeFeatureSet(
    tidy(() => randn([n, ...a.shape]).mul(a.scale)),
    Array.from({ length: n }, (_, i) => i % a.classes.length),
    a.classes,
  );
}

const snapshot = (model: TorchScriptModel): Map<string, Float32Array> =>
  new Map([...model.stateDict()].filter(([, t]) => t.dtype === 'float32').map(([k, t]) => [k, noGrad(() => t.toFloat32Array())]));
const changed = (before: Map<string, Float32Array>, model: TorchScriptModel): string[] =>
  [...model.stateDict()].filter(([k, t]) => before.has(k) && noGrad(() => t.toFloat32Array()).some((v, i) => v !== before.get(k)?.[i])).map(([k]) => k);

async function defend(
  which: keyof typeof archives,
  name: string,
  options: Record<string, OptionValue>,
): Promise<{ report: DefenseReport; changed: string[]; model: TorchScriptModel }> {
  manualSeed(5);
  const model = loadTorchScriptModel(archives[which].file);
  const spec = getDefense(name);
  const clean = spec.needsData
    ? toyData(which, 40)
    : makeFeatureSet(
        tidy(() => randn([0, ...archives[which].shape])),
        [],
        archives[which].classes,
      );
  const before = snapshot(model);
  try {
    const info = { name: `torchscript:${which}`, neuronLayers: model.neuronLayers() };
    assert.equal(spec.modelProblem?.(model, info) ?? null, null);
    const report = await spec.run(model, clean, { options: { ...spec.recipes.default, ...options }, seed: 7, model: info });
    for (const [k, t] of model.stateDict()) assert.ok(tidy(() => all(isfinite(t)).item()) === 1, `${name}: ${k} finite`);
    return { report, changed: changed(before, model), model };
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    disposeFeatureSet(clean);
  }
}

describe('FP, CLP, NGF, NFT and ANP on TorchScript models', () => {
  it("FP ranks the last conv's channels by their activations inside the archive and prunes them", async () => {
    const live = memory().liveTensors;
    const { report, changed: moved, model } = await defend('kws', 'fp', { epochs: 2, batchSize: 8, maxDrop: 1 });
    const d = report.details as { layer: string; kind: string; neurons: number; pruned: number[] };
    assert.equal(d.layer, 'dw');
    assert.equal(d.kind, 'output-channels');
    assert.equal(d.neurons, 6);
    assert.ok(d.pruned.length > 0);
    const w = (model.stateDict().get('dw.weight') as Tensor).toFloat32Array();
    for (const c of d.pruned)
      assert.ok(
        w.slice(c * 9, c * 9 + 9).every((v) => v === 0),
        `channel ${c} pruned`,
      );
    assert.ok(moved.includes('classifier.weight'));
    model.dispose();
    assert.equal(memory().liveTensors, live);
  });

  it('FP on the nested archive prunes its last conv (inside a block)', async () => {
    const { report, model } = await defend('nested', 'fp', { epochs: 1, batchSize: 8, maxDrop: 1 });
    const d = report.details as { layer: string; pruned: number[] };
    assert.equal(d.layer, 'layers.1.downsample.0');
    assert.ok(d.pruned.length > 0);
    model.dispose();
  });

  it('CLP pairs each conv with the BatchNorm that reads it, in the order the archive runs them, and prunes outliers', async () => {
    for (const which of ['kws', 'nested'] as const) {
      const { report, changed: moved, model } = await defend(which, 'clp', { u: 0.5 });
      const d = report.details as { layers: { conv: string; batchNorm: string; direct: boolean; pruned: number[] }[]; prunedChannels: number };
      const pairs = d.layers.map((l) => `${l.conv}->${l.batchNorm}${l.direct ? '' : ' (indirect)'}`);
      assert.deepEqual(
        pairs,
        which === 'kws'
          ? ['conv->bn', 'dw->bn_dw']
          : [
              'conv->bn',
              'layers.0.conv1->layers.0.bn1',
              'layers.0.conv2->layers.0.bn2',
              'layers.1.conv1->layers.1.bn1',
              'layers.1.conv2->layers.1.bn2',
              'layers.1.downsample.0->layers.1.downsample.1',
            ],
      );
      assert.ok(d.prunedChannels > 0);
      assert.ok(moved.some((k) => k.endsWith('.weight')));
      model.dispose();
    }
  });

  it('NGF tunes the classifier with activations and output gradients caught inside the archive', async () => {
    const { report, changed: moved, model } = await defend('kws', 'ngf', { epochs: 2, batchSize: 8, tCov: 1, tInv: 2, tScal: 2 });
    assert.equal((report.details as { layer: string }).layer, 'classifier');
    assert.deepEqual(moved.sort(), ['classifier.bias', 'classifier.weight']);
    model.dispose();
  });

  it('NFT trains masks on the BatchNorm scales of the archive and folds them in', async () => {
    for (const which of ['kws', 'nested'] as const) {
      const { report, changed: moved, model } = await defend(which, 'nft', { epochs: 2, batchSize: 8, lr: 0.5 });
      const masks = (report.details as { masks: { layer: string; values: number[] }[] }).masks;
      assert.ok(masks.length >= 2);
      assert.ok(masks.some((m) => m.values.some((v) => v !== 1)));
      assert.ok(moved.length > 0 && moved.every((k) => k.endsWith('.weight') || k.includes('running_')), moved.join(', '));
      // the masks were model parameters while they trained, and are gone now
      assert.ok(![...model.stateDict().keys()].some((k) => k.endsWith('nft_mask')));
      model.dispose();
    }
  });

  it('ANP trains masks against neuron noise on the BatchNorms of the archive and prunes at a threshold', async () => {
    const { report, model } = await defend('kws', 'anp', { iterations: 10, batchSize: 8, lr: 5, maxDrop: 1 });
    const d = report.details as { masks: Record<string, number[]>; prunedChannels: number; threshold: number | null };
    assert.deepEqual(Object.keys(d.masks), ['bn', 'bn_dw']);
    assert.ok(Object.values(d.masks).some((m) => m.some((v) => v !== 1)));
    assert.ok(d.prunedChannels > 0);
    model.dispose();
  });

  it('the defended archive saves and loads back with the defended weights', async () => {
    const { model } = await defend('nested', 'clp', { u: 0.5 });
    const dir = mkdtempSync(path.join(tmpdir(), 'kwshield-ts-'));
    try {
      const file = path.join(dir, 'defended.pt');
      model.save(file);
      const back = loadTorchScriptModel(file);
      const x = tidy(() => randn([2, 1, 12, 10]));
      const a = tidy(() => noGrad(() => model.forward(x).toFloat32Array()));
      const b = tidy(() => noGrad(() => back.forward(x).toFloat32Array()));
      assert.deepEqual(a, b);
      x.dispose();
      back.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
      model.dispose();
    }
  });

  it('a defense whose layer no hook can reach in the archive refuses, naming the layer and why; the others run', async () => {
    const model = loadTorchScriptModel(archives.odd.file);
    const info = { name: 'torchscript:odd', neuronLayers: model.neuronLayers() };
    const why = /'conv2' is never called by the forward \(its code may read the layer's tensors directly instead of calling it\)/;
    const fp = getDefense('fp').modelProblem?.(model, info) ?? '';
    assert.match(
      fp,
      /^fp ranks the channels of the last conv layer 'conv2' by their activations on clean data .*with a forward hook on 'conv2'; in the TorchScript archive .*kws-odd-scripted\.pt, /,
    );
    assert.match(fp, why);
    const clp = getDefense('clp').modelProblem?.(model, info) ?? '';
    assert.match(clp, /^clp pairs each convolution with the BatchNorm that reads its output by watching the layers run, with a forward hook on 'conv2'/);
    assert.match(clp, why);
    for (const name of ['nft', 'anp', 'ngf']) assert.equal(getDefense(name).modelProblem?.(model, info) ?? null, null, name);
    // fp with the classifier's input features reaches a layer the archive calls
    const clean = toyData('odd', 40);
    try {
      const report = await getDefense('fp').run(model, clean, {
        options: { ...getDefense('fp').recipes.default, layer: 'penultimate', epochs: 1, batchSize: 8, maxDrop: 1 },
        seed: 7,
        model: info,
      });
      assert.equal((report.details as { layer: string }).layer, 'fc');
      await assert.rejects(
        getDefense('fp').run(model, clean, { options: { ...getDefense('fp').recipes.default, epochs: 1 }, seed: 7, model: info }),
        (e: Error) => why.test(e.message) && e.message.startsWith("fp ranks the channels of the last conv layer 'conv2'"),
      );
    } finally {
      disposeFeatureSet(clean);
      model.dispose();
    }
  });
});
