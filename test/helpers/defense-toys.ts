// Toy data and models for the defense tests: 8x8 "MFCC" clips of 3 classes, each class brightening one
// band of rows, and small conv nets whose layer names (conv1, bn1, conv2, ...) the defenses address.
// Built after manualSeed, a toy's weights depend only on the seed.
import assert from 'node:assert/strict';
import { type FeatureSet, makeFeatureSet } from '../../src/data/feature-set.ts';
import { createRng } from '../../src/data/rng.ts';
import type { ModelInfo } from '../../src/defenses/types.ts';
import type { KwsModel } from '../../src/models/registry.ts';
import { BatchNorm2d, Conv2d, Linear, Module } from '../../src/nn/index.ts';
import { avgPool2d, manualSeed, memory, type Tensor, tensor, tidy } from '../../src/torch/index.ts';

/** n clips of 8 x 8 "MFCC", class i % 3: noise plus a brighter band of rows that says the class. */
export function bandedClips(n: number, seed: number): FeatureSet {
  const rng = createRng(seed);
  const labels = Array.from({ length: n }, (_, i) => i % 3);
  const data = new Float32Array(n * 64);
  labels.forEach((label, i) => {
    for (let j = 0; j < 64; j++) data[i * 64 + j] = rng.normal() * 0.5 + (Math.floor(j / 8) % 3 === label ? 1.5 : 0);
  });
  return makeFeatureSet(tensor(data, [n, 8, 8]), labels, ['a', 'b', 'c']);
}

/** conv1 -> bn1 -> relu -> conv2 -> relu -> pool -> fc: one BatchNorm, two neuron layers. */
export class ToyConv extends Module {
  conv1 = new Conv2d(1, 6, 3, { padding: 1 });
  bn1 = new BatchNorm2d(6);
  conv2 = new Conv2d(6, 8, 3, { padding: 1 });
  fc = new Linear(8 * 4 * 4, 3);
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const h = this.conv2.forward(this.bn1.forward(this.conv1.forward(x.unsqueeze(1))).relu()).relu();
      return this.fc.forward(avgPool2d(h, 2).flatten(1));
    });
  }
}

/** ToyConv with a BatchNorm after each conv (what the mask defenses, ANP and NFT, mask). */
export class ToyConvTwoNorms extends Module {
  conv1 = new Conv2d(1, 6, 3, { padding: 1 });
  bn1 = new BatchNorm2d(6);
  conv2 = new Conv2d(6, 8, 3, { padding: 1 });
  bn2 = new BatchNorm2d(8);
  fc = new Linear(8 * 4 * 4, 3);
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const h = this.bn2.forward(this.conv2.forward(this.bn1.forward(this.conv1.forward(x.unsqueeze(1))).relu())).relu();
      return this.fc.forward(avgPool2d(h, 2).flatten(1));
    });
  }
}

/** What the defenses are told about both toys. */
export const toyInfo: ModelInfo = { name: 'toy', neuronLayers: ['conv1', 'conv2'] };

/** A toy built right after manualSeed(seed), typed as the model a defense takes. */
export function seededToy<M extends Module>(make: () => M, seed: number): M & KwsModel {
  manualSeed(seed);
  return make() as M & KwsModel;
}

/** Every state-dict tensor as plain numbers, by name: compare two with deepEqual. */
export const stateArrays = (m: Module): Map<string, number[]> => new Map([...m.stateDict()].map(([k, v]) => [k, Array.from(v.toFloat32Array())]));

/**
 * Runs a seeded defense run twice and checks that the second leaves no tensor behind; returns both
 * results for the caller to compare (the same seed must give the same result).
 */
export async function twoRunsNoLeak<T>(runOnce: () => Promise<T>): Promise<{ first: T; second: T }> {
  const first = await runOnce();
  const live = memory().liveTensors;
  const second = await runOnce();
  assert.equal(memory().liveTensors, live, 'no tensor left behind by a run');
  return { first, second };
}
