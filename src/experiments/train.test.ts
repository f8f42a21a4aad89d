import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { getFrontEnd } from '../audio/frontends.ts';
import { timeAxisOf } from '../data/augment.ts';
import { disposeFeatureSet, type FeatureSet, makeFeatureSet } from '../data/feature-set.ts';
import { createRng } from '../data/rng.ts';
import type { KwsModel } from '../models/registry.ts';
import { Linear, Module } from '../nn/index.ts';
import { manualSeed, mean, memory, mul, sub, type Tensor, tensor, tidy } from '../torch/index.ts';
import { evaluate } from './evaluate.ts';
import { augmentBatch, trainModel } from './train.ts';

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

describe('augmentBatch', () => {
  const aug = { timeShiftSeconds: 0.05, featureNoise: 0.05, waveformSnrDb: 20 };
  const waveform = { kind: 'waveform', stepsPerSecond: 16000 } as const;
  const features = { kind: 'features', stepsPerSecond: 100 } as const;

  it('adds waveform noise 20 dB under each clip, whatever its level', () => {
    manualSeed(3);
    tidy(() => {
      // Two sine clips, one 100 times quieter: a fixed noise std would drown the quiet one.
      const n = 16000;
      const sine = Array.from({ length: n }, (_, i) => Math.sin((2 * Math.PI * 440 * i) / n));
      const x = tensor([...sine.map((v) => 0.5 * v), ...sine.map((v) => 0.005 * v)], [2, n]);
      const noise = sub(augmentBatch(x, aug, waveform, 0), x);
      const power = (t: Tensor) => mean(mul(t, t), [1]).toArray() as number[];
      const [signalLoud, signalQuiet] = power(x);
      const [noiseLoud, noiseQuiet] = power(noise);
      for (const [s, v] of [
        [signalLoud, noiseLoud],
        [signalQuiet, noiseQuiet],
      ]) {
        const snr = 10 * Math.log10(s / v);
        assert.ok(Math.abs(snr - 20) < 0.3, `SNR ${snr.toFixed(2)} dB, expected 20`);
      }
    });
  });

  it('shifts along time and adds feature-unit noise to spectral features', () => {
    manualSeed(4);
    tidy(() => {
      const x = tensor(
        Array.from({ length: 2 * 10 * 3 }, (_, i) => i),
        [2, 10, 3],
      );
      const y = augmentBatch(x, { ...aug, featureNoise: 0 }, features, 2);
      assert.deepEqual(y.select(1, 2).toArray(), x.select(1, 0).toArray());
      const noisy = sub(augmentBatch(x, aug, features, 0), x);
      const std = Math.sqrt(mean(mul(noisy, noisy)).item());
      assert.ok(Math.abs(std - 0.05) < 0.02, `noise std ${std}`);
    });
  });
});

describe('timeAxisOf', () => {
  it('reads samples or frames per second from the front-end', () => {
    assert.deepEqual(timeAxisOf(getFrontEnd('waveform-16k')), { kind: 'waveform', stepsPerSecond: 16000 });
    const rate = (name: string) => timeAxisOf(getFrontEnd(name)).stepsPerSecond;
    assert.equal(rate('mfcc-16k'), 101); // 101 frames (hop 10 ms, centred) over 1 s
    assert.equal(rate('mfcc-kwt'), 98);
    assert.equal(rate('mfcc-librosa'), 32); // hop 512 at 16 kHz: 50 ms of shift is 2 frames, not 5
  });
});
