// CLC/BLC and zones: the batched method equals pruning one neuron at a time, the model is bit-identical
// afterwards, zones follow the signs, and their counts cover every neuron.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { toySet, trainToy } from '../../test/helpers/analysis-toys.ts';
import { disposeFeatureSet } from '../data/feature-set.ts';
import { resolveNeuronLayer, withNeuronZeroed } from '../models/neurons.ts';
import { lossChanges, zoneCounts, zoneOf } from './zones.ts';

const patch = { value: 4, size: 2 };
const layers = ['stem', 'block.conv1', 'block.conv2', 'head', 'hidden'];
const bytesOf = (m: { stateDict(): Map<string, { bytes(): Uint8Array }> }) =>
  [...m.stateDict()].map(([k, t]) => [k, Buffer.from(t.bytes()).toString('base64')]);

describe('neuron zones', () => {
  const model = trainToy({ steps: 60, poison: { patch, target: 1, ratio: 0.1 } });
  const clean = toySet(40, 5);
  const triggered = toySet(40, 5, { patch });

  it('zeroing a neuron and restoring it leaves the model bit-identical, also when the evaluation throws', () => {
    const before = bytesOf(model);
    const layer = resolveNeuronLayer(model, 'head');
    const row = () => Array.from(model.head.weight.select(0, 3).toFloat32Array());
    withNeuronZeroed(layer, 3, () => {
      assert.ok(row().every((v) => v === 0));
      assert.equal(model.head.bias?.select(0, 3).item(), 0);
    });
    assert.throws(() =>
      withNeuronZeroed(layer, 5, () => {
        throw new Error('boom');
      }),
    );
    assert.deepEqual(bytesOf(model), before);
  });

  it('batched loss changes equal the one-neuron-at-a-time ones, and leave the model bit-identical', () => {
    const before = bytesOf(model);
    const backdoor = { set: triggered, targetLabel: 1 };
    const fast = lossChanges(model, layers, clean, backdoor, { batchSize: 16, rowsPerForward: 64 });
    assert.deepEqual(bytesOf(model), before, 'batched');
    const exact = lossChanges(model, layers, clean, backdoor, { method: 'exact', batchSize: 16 });
    assert.deepEqual(bytesOf(model), before, 'exact');
    assert.deepEqual(fast.methods, {
      stem: 'batched@stem',
      'block.conv1': 'batched@block',
      'block.conv2': 'batched@block',
      head: 'batched@head',
      hidden: 'batched@hidden',
    });
    assert.equal(fast.neurons.length, 6 + 6 + 6 + 8 + 12);
    fast.neurons.forEach((n, i) => {
      const e = exact.neurons[i];
      assert.equal(`${n.layer}:${n.index}`, `${e.layer}:${e.index}`);
      assert.ok(Math.abs(n.clc - e.clc) < 1e-5, `clc ${n.layer}:${n.index} ${n.clc} vs ${e.clc}`);
      assert.ok(Math.abs((n.blc as number) - (e.blc as number)) < 1e-5, `blc ${n.layer}:${n.index}`);
    });
    assert.ok(
      fast.neurons.some((n) => Math.abs(n.clc) > 1e-3),
      'some neuron matters',
    );
    const counts = zoneCounts(fast.neurons.map((n) => n.zone ?? 'redundant'));
    assert.equal(counts.clean + counts.backdoor + counts.hybrid + counts.redundant, fast.neurons.length);
  });

  it('zones follow the signs of CLC and BLC, within the tolerance', () => {
    assert.equal(zoneOf(0.1, -0.2), 'clean');
    assert.equal(zoneOf(0.1, 0), 'clean');
    assert.equal(zoneOf(-0.1, 0.3), 'backdoor');
    assert.equal(zoneOf(0.1, 0.3), 'hybrid');
    assert.equal(zoneOf(0, 0), 'redundant');
    assert.equal(zoneOf(-1, -1), 'redundant');
    assert.equal(zoneOf(1e-8, 0.5, 1e-6), 'backdoor');
  });

  it('without a triggered set there is a CLC and no zone', () => {
    const r = lossChanges(model, ['head'], clean);
    assert.equal(r.neurons.length, 8);
    assert.ok(r.neurons.every((n) => n.blc === undefined && n.zone === undefined && Number.isFinite(n.clc)));
    assert.equal(r.baseline.backdoor, undefined);
  });

  after(() => {
    disposeFeatureSet(clean);
    disposeFeatureSet(triggered);
    model.dispose();
  });
});
