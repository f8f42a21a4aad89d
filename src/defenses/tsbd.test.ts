// TSBD: the reinitialisation zeroes exactly the selected weights and nothing else (conv channels and LSTM
// units); unlearning stops at its threshold; the neuron ratio follows the hold-out rule; resumable.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { bandedClips, seededToy, stateArrays, ToyConv, toyInfo, twoRunsNoLeak } from '../../test/helpers/defense-toys.ts';
import { disposeFeatureSet, type FeatureSet, subsetOf } from '../data/feature-set.ts';
import { createRng } from '../data/rng.ts';
import type { KwsModel } from '../models/registry.ts';
import { Linear, LSTM, Module } from '../nn/index.ts';
import { manualSeed, type Tensor, tidy } from '../torch/index.ts';
import { getDefense, holdoutIndices, neuronRatios, rankNeurons, reinitialise, tsbdNeuronGroups, unlearn } from './index.ts';

const work = mkdtempSync(path.join(tmpdir(), 'kws-tsbd-'));
after(() => rmSync(work, { recursive: true, force: true }));

class ToyLstm extends Module {
  lstm = new LSTM(8, 4, { numLayers: 1, batchFirst: true });
  fc = new Linear(4, 3);
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const h = this.lstm.forward(x);
      return this.fc.forward(h.select(1, h.size(1) - 1));
    });
  }
}

const tsbd = getDefense('tsbd');
const toy = (seed: number) => seededToy(() => new ToyConv(), seed);
const quick = { epochs: 2, batchSize: 16, lr: 0.05, unlearnEpochs: 3, unlearnLr: 0.003 };

/** The toy fitted to the clips first (deterministic), so that reinitialisation costs accuracy. */
async function trainedToy(seed: number, clean: FeatureSet): Promise<ToyConv & KwsModel> {
  const model = toy(seed);
  const ft = getDefense('ft');
  await ft.run(model, clean, { options: { ...ft.recipes.default, epochs: 6, batchSize: 16, lr: 0.05, holdout: 0 }, seed: 1, model: toyInfo });
  return model;
}

/** Distinct made-up weight changes per group. */
function madeUpChanges(sizes: number[], seed: number): Float32Array[] {
  const rng = createRng(seed);
  return sizes.map((n) => Float32Array.from({ length: n }, () => rng.next()));
}

describe('tsbd', () => {
  it('reinitialisation zeroes exactly the selected weights of conv channels and nothing else', () => {
    const model = toy(1);
    const { kind, groups } = tsbdNeuronGroups(model, toyInfo);
    assert.equal(kind, 'conv');
    assert.deepEqual(
      groups.map((g) => [g.layer, g.neurons, g.width]),
      [
        ['conv1', 6, 9],
        ['conv2', 8, 54],
      ],
    );
    const changes = madeUpChanges([6 * 9, 8 * 54], 3);
    const before = stateArrays(model);
    const ranked = rankNeurons(changes, groups);
    const r = reinitialise(groups, changes, ranked, 0.3, 0.7);
    // the selection, computed here from its definition
    const nwc = groups.flatMap((g, gi) =>
      Array.from({ length: g.neurons }, (_, n) => ({ gi, n, v: changes[gi].subarray(n * g.width, (n + 1) * g.width).reduce((s, x) => s + x, 0) })),
    );
    const top = [...nwc].sort((p, q) => q.v - p.v).slice(0, Math.floor(14 * 0.3));
    const pool = top.flatMap((t) => Array.from(changes[t.gi].subarray(t.n * groups[t.gi].width, (t.n + 1) * groups[t.gi].width)));
    const cut = [...pool].sort((p, q) => q - p)[Math.floor(pool.length * 0.7) - 1];
    const selected = new Set(
      top
        .flatMap((t) =>
          Array.from({ length: groups[t.gi].width }, (_, j) => [t.gi, t.n * groups[t.gi].width + j] as const).filter(([gi, j]) => changes[gi][j] >= cut),
        )
        .map(([gi, j]) => `${gi}:${j}`),
    );
    assert.equal(r.neurons, 4);
    assert.equal(r.weights, selected.size);
    assert.equal(r.threshold, cut);
    for (const [name, values] of stateArrays(model)) {
      const gi = ['conv1.weight', 'conv2.weight'].indexOf(name);
      const expected = (before.get(name) as number[]).map((v, j) => (gi >= 0 && selected.has(`${gi}:${j}`) ? 0 : v));
      assert.deepEqual(
        values.map((v) => (Object.is(v, -0) ? 0 : v)),
        expected,
        name,
      );
    }
    model.dispose();
  });

  it('an LSTM unit owns rows u, H+u, 2H+u, 3H+u of its input and recurrent weights', () => {
    manualSeed(2);
    const model = new ToyLstm();
    const { kind, groups } = tsbdNeuronGroups(model, { name: 'lstm', neuronLayers: ['lstm.l0'] });
    assert.equal(kind, 'lstm');
    const [g] = groups;
    assert.deepEqual([g.neurons, g.width], [4, 4 * (8 + 4)]);
    const ih = stateArrays(model).get('lstm.weight_ih_l0') as number[];
    const hh = stateArrays(model).get('lstm.weight_hh_l0') as number[];
    const rows = tidy(() => g.rows().toArray());
    const unit = 2;
    const expected = [0, 1, 2, 3].flatMap((gate) => ih.slice((gate * 4 + unit) * 8, (gate * 4 + unit + 1) * 8));
    expected.push(...[0, 1, 2, 3].flatMap((gate) => hh.slice((gate * 4 + unit) * 4, (gate * 4 + unit + 1) * 4)));
    assert.deepEqual(rows.slice(unit * 48, (unit + 1) * 48), expected);
    // zeroing one made-up selection touches exactly the rows it maps to
    const changes = [Float32Array.from({ length: 4 * 48 }, (_, j) => (j === unit * 48 + 8 + 3 || j === unit * 48 + 32 + 1 ? 1 : 0))];
    reinitialise(groups, changes, [{ group: 0, neuron: unit }], 1, 2 / 48);
    const ihAfter = stateArrays(model).get('lstm.weight_ih_l0') as number[];
    const hhAfter = stateArrays(model).get('lstm.weight_hh_l0') as number[];
    // entry 8 + 3: gate 1 (forget), input 3; entry 32 + 1: recurrent part, gate 0, hidden 1
    assert.deepEqual(
      ihAfter.flatMap((v, j) => (v !== ih[j] ? [j] : [])),
      [(1 * 4 + unit) * 8 + 3],
    );
    assert.deepEqual(
      hhAfter.flatMap((v, j) => (v !== hh[j] ? [j] : [])),
      [(0 * 4 + unit) * 4 + 1],
    );
    model.dispose();
  });

  it('unlearning stops at the first epoch whose hold-out accuracy is at or below the target', async () => {
    const clean = bandedClips(60, 2);
    const split = holdoutIndices(clean.labelList, 0.2, 1);
    const fit = subsetOf(clean, split.fit);
    const holdout = subsetOf(clean, split.holdout);
    const model = toy(3);
    // first make it accurate, so unlearning has something to undo
    await getDefense('ft').run(model, clean, {
      options: { ...getDefense('ft').recipes.default, epochs: 6, batchSize: 16, lr: 0.05, holdout: 0 },
      seed: 1,
      model: toyInfo,
    });
    // with 3 classes, ascent collapses the model to one class (1/3 right): the target sits just above that
    const o = { lr: 0.01, momentum: 0.9, maxEpochs: 50, target: 0.34, batchSize: 16, shortBatch: 'merge' as const };
    const { epochs, reached } = await unlearn(model, fit, holdout, o, 1);
    assert.ok(reached, `reached the target: ${epochs.map((e) => e.holdoutAccuracy)}`);
    assert.ok(epochs.length > 1, 'took more than one epoch');
    assert.ok(epochs[epochs.length - 1].holdoutAccuracy <= o.target);
    assert.ok(epochs.slice(0, -1).every((e) => e.holdoutAccuracy > o.target));
    const untrained = toy(3);
    const capped = await unlearn(untrained, fit, holdout, { ...o, lr: 1e-6, maxEpochs: 2, target: 0 }, 1);
    untrained.dispose();
    assert.deepEqual([capped.epochs.length, capped.reached], [2, false], 'stops at the cap without reaching the target');
    // an ascent that overflows stops there and keeps the finite weights of the start of that epoch
    const blown = toy(3);
    const wild = await unlearn(blown, fit, holdout, { ...o, lr: 1e6, momentum: 0.99, maxEpochs: 40, target: 0 }, 1);
    assert.equal(wild.reached, false);
    assert.ok(wild.divergedAt !== undefined && wild.divergedAt < 40, `diverged at ${wild.divergedAt}`);
    assert.equal(wild.epochs.length, wild.divergedAt, 'every finished epoch is reported, the diverging one is not');
    for (const [name, t] of [...blown.namedParameters(), ...blown.namedBuffers()]) {
      assert.ok(
        t.toArray().every((v: number) => Number.isFinite(v)),
        `${name} is finite`,
      );
    }
    blown.dispose();
    model.dispose();
    for (const s of [clean, fit, holdout]) disposeFeatureSet(s);
  });

  it('chooses the neuron ratio by the hold-out rule, is deterministic, keeps memory flat and resumes', async () => {
    const clean = bandedClips(60, 2);
    const runOnce = async (extra: Record<string, unknown> = {}, checkpointDir?: string, resume?: boolean) => {
      const model = await trainedToy(4, clean);
      const report = await tsbd.run(model, clean, { options: { ...tsbd.recipes.default, ...quick, ...extra }, seed: 5, model: toyInfo, checkpointDir, resume });
      const w = stateArrays(model);
      model.dispose();
      return { report, w };
    };
    const { first, second } = await twoRunsNoLeak(runOnce);
    assert.deepEqual(second.w, first.w);
    const d = first.report.details;
    const trail = d.ratioTrail as { ratio: number; weights: number; holdoutAccuracy: number }[];
    assert.deepEqual(
      trail.map((t) => t.ratio),
      neuronRatios.slice(0, trail.length),
    );
    const floor = 0.9 * first.report.holdoutBefore;
    const failed = trail.findIndex((t) => t.holdoutAccuracy < floor);
    assert.ok(failed === -1 || failed === trail.length - 1, 'the scan stops at the first failure');
    const expected = failed === -1 ? trail[trail.length - 1].ratio : failed === 0 ? neuronRatios[0] : trail[failed - 1].ratio;
    assert.equal(d.neuronRatio, expected);
    assert.ok(failed > 2, `a trail that gets somewhere: ${JSON.stringify(trail)}`);
    assert.equal(d.zeroedWeights, (trail.find((t) => t.ratio === d.neuronRatio) as { weights: number }).weights);
    assert.ok((d.zeroedWeights as number) > 0);
    assert.equal(d.unlearningEpochs, (first.report.epochs as { phase: string }[]).filter((e) => e.phase === 'tsbd-unlearning').length);
    // a fixed ratio skips the scan
    const fixed = await runOnce({ neuronRatio: 0.2 });
    assert.deepEqual([fixed.report.details.neuronRatio, (fixed.report.details.ratioTrail as unknown[]).length], [0.2, 0]);
    assert.ok((fixed.report.details.zeroedWeights as number) > 0);
    // resumable: a second run on the same folder skips unlearning and ends with the same weights
    const dir = path.join(work, 'resume');
    const full = await runOnce({}, dir);
    const resumed = await runOnce({}, dir, true);
    assert.deepEqual(resumed.w, full.w);
    const refused = toy(0);
    await assert.rejects(
      tsbd.run(refused, clean, { options: { holdout: 0 }, seed: 0, model: toyInfo }),
      /tsbd stops unlearning and chooses its neuron ratio on a clean hold-out/,
    );
    await assert.rejects(
      tsbd.run(refused, clean, { options: { neuronRatio: 0.33 }, seed: 0, model: toyInfo }),
      /tsbd: option neuronRatio must be one of auto, 0.01/,
    );
    refused.dispose();
    disposeFeatureSet(clean);
  });
});
