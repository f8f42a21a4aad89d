import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { disposeFeatureSet, type FeatureSet, makeFeatureSet } from '../data/feature-set.ts';
import { createRng } from '../data/rng.ts';
import type { KwsModel } from '../models/registry.ts';
import { Linear, Module } from '../nn/index.ts';
import { manualSeed, memory, type Tensor, tensor } from '../torch/index.ts';
import { evaluate } from './evaluate.ts';
import { trainModel } from './train.ts';

/** Clips of [8 frames, 4 coefficients] whose class shifts the mean of one coefficient. */
function toySet(n: number, seed: number): FeatureSet {
  const rng = createRng(seed);
  const labels = Array.from({ length: n }, (_, i) => i % 3);
  const data = new Float32Array(n * 32);
  labels.forEach((label, i) => {
    for (let j = 0; j < 32; j++) data[i * 32 + j] = rng.normal() * 0.5 + (j % 4 === label ? 1.5 : 0);
  });
  return makeFeatureSet(tensor(data, [n, 8, 4]), labels, ['a', 'b', 'c']);
}

class Toy extends Module {
  fc = new Linear(32, 3);
  forward(x: Tensor): Tensor {
    return this.fc.forward(x.flatten(1));
  }
}

const fast = { epochs: 4, batchSize: 16, patience: 100, lr: 0.05 };

describe('trainModel', () => {
  it('learns, records every epoch, and restores the best weights', async () => {
    manualSeed(0);
    const train = toySet(96, 1);
    const val = toySet(48, 2);
    const model = new Toy() as KwsModel;
    const record = await trainModel(model, train, val, { overrides: fast, seed: 1 });
    assert.equal(record.epochs.length, 4);
    assert.ok(record.epochs.every((e) => e.samplesPerSecond > 0 && Number.isFinite(e.trainLoss)));
    const best = record.epochs[record.bestEpoch].valAccuracy;
    assert.ok(best > 0.9, `best validation accuracy ${best}`);
    assert.equal(evaluate(model, val).accuracy, best);
    for (const s of [train, val]) disposeFeatureSet(s);
    model.dispose();
  });

  it('an interrupted run resumed from its checkpoint ends where an uninterrupted one does', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kws-train-'));
    const train = toySet(64, 3);
    const val = toySet(32, 4);
    const run = async (checkpointDir: string, stopAfterBatches?: number) => {
      manualSeed(5);
      const model = new Toy() as KwsModel;
      let batches = 0;
      const record = await trainModel(model, train, val, {
        overrides: fast,
        seed: 2,
        checkpointDir,
        resume: true,
        shouldStop: () => stopAfterBatches !== undefined && ++batches > stopAfterBatches,
      });
      const weights = model.stateDict().get('fc.weight')?.toArray();
      model.dispose();
      return { record, weights };
    };
    const whole = await run(path.join(dir, 'whole'));
    const cut = await run(path.join(dir, 'cut'), 6); // 4 batches per epoch: stops inside epoch 2
    assert.equal(cut.record.epochs.length, 1);
    const resumed = await run(path.join(dir, 'cut'));
    assert.equal(resumed.record.epochs.length, 4);
    assert.deepEqual(resumed.weights, whole.weights);
    assert.deepEqual(
      resumed.record.epochs.map((e) => e.valAccuracy),
      whole.record.epochs.map((e) => e.valAccuracy),
    );
    rmSync(dir, { recursive: true });
    for (const s of [train, val]) disposeFeatureSet(s);
  });

  it('does not grow live tensors across runs', async () => {
    const train = toySet(32, 5);
    const val = toySet(16, 6);
    const once = async () => {
      const model = new Toy() as KwsModel;
      await trainModel(model, train, val, { overrides: { ...fast, epochs: 2 } });
      model.dispose();
    };
    await once();
    const before = memory().liveTensors;
    await once();
    assert.equal(memory().liveTensors, before);
  });
});
