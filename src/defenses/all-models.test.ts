// Every registered defense on each of the five model families (resnet, lstm, smallcnn, kwt, eat): one short
// run on 24 random clips either completes with finite weights or is refused with the defense's own
// modelProblem message. Spectral models read mfcc-flowmur clips (32 x 13); EAT a smaller configuration of
// itself on 8,192-sample waveforms (its dilated blocks need at least that); KWT two layers instead of twelve (the layer type is what matters here).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { disposeFeatureSet, makeFeatureSet } from '../data/feature-set.ts';
import { buildModel, configForFrontEnd, getModelSpec, type KwsModel } from '../models/index.ts';
import type { OptionValue } from '../options/options.ts';
import { all, isfinite, manualSeed, randn, tidy } from '../torch/index.ts';
import { defenseNames, getDefense } from './index.ts';

const families: { name: string; frontEnd: string; overrides: Record<string, unknown> }[] = [
  { name: 'resnet', frontEnd: 'mfcc-flowmur', overrides: {} },
  { name: 'lstm', frontEnd: 'mfcc-flowmur', overrides: {} },
  { name: 'smallcnn', frontEnd: 'mfcc-flowmur', overrides: {} },
  { name: 'kwt', frontEnd: 'mfcc-flowmur', overrides: { depth: 2 } },
  { name: 'eat', frontEnd: 'waveform-16k', overrides: { inputSamples: 8192, nf: 4, embedDim: 16, layers: 1, heads: 2, dimFeedforward: 32 } },
];

/** The shortest run each option set allows: one epoch, iteration or unlearning epoch, small batches. */
function shortOptions(name: string): Record<string, OptionValue> {
  const spec = getDefense(name);
  const short: Record<string, OptionValue> = { epochs: 1, batchSize: 8, iterations: 2, unlearnEpochs: 1 };
  return { ...spec.recipes.default, ...Object.fromEntries(Object.entries(short).filter(([k]) => Object.hasOwn(spec.options, k))) };
}

describe('every defense on every model family', () => {
  for (const family of families) {
    it(`${family.name}: runs or is refused by modelProblem`, async () => {
      const { config } = configForFrontEnd(family.name, family.frontEnd);
      const shape = family.name === 'eat' ? [family.overrides.inputSamples as number] : configForFrontEnd(family.name, family.frontEnd).inputShape;
      manualSeed(1);
      const clean = makeFeatureSet(
        tidy(() => randn([24, ...shape]).mul(family.name === 'eat' ? 0.1 : 1)),
        Array.from({ length: 24 }, (_, i) => i % 3),
        ['a', 'b', 'c'],
      );
      const outcomes: string[] = [];
      try {
        for (const name of defenseNames()) {
          const spec = getDefense(name);
          manualSeed(2);
          const model: KwsModel = buildModel(family.name, { ...config, ...family.overrides, classes: 3 });
          const info = { name: family.name, neuronLayers: getModelSpec(family.name).neuronLayers(model) };
          const input = spec.needsData
            ? clean
            : makeFeatureSet(
                tidy(() => randn([0, ...shape])),
                [],
                clean.classes,
              );
          try {
            const problem = spec.modelProblem?.(model, info) ?? null;
            if (problem) {
              await assert.rejects(spec.run(model, input, { options: shortOptions(name), seed: 3, model: info }), (e: Error) => e.message === problem);
              outcomes.push(`${name}: refused`);
            } else {
              const report = await spec.run(model, input, { options: shortOptions(name), seed: 3, model: info });
              assert.equal(report.defense, name);
              for (const [k, t] of model.stateDict()) assert.ok(tidy(() => all(isfinite(t)).item()) === 1, `${name} on ${family.name}: ${k} finite`);
              outcomes.push(`${name}: ran`);
            }
          } finally {
            if (input !== clean) disposeFeatureSet(input);
            model.dispose();
          }
        }
      } finally {
        disposeFeatureSet(clean);
      }
      const refused = outcomes.filter((o) => o.endsWith('refused')).map((o) => o.split(':')[0]);
      const expectedRefusals: Record<string, string[]> = { lstm: ['nft', 'clp', 'anp'], kwt: ['clp'] };
      assert.deepEqual(refused, expectedRefusals[family.name] ?? [], outcomes.join(', '));
    });
  }
});

describe('every defense that reads clean data refuses a clean set too small for it', () => {
  it('resnet, 6 clips: each names its minimum and the fix', async () => {
    const { config, inputShape } = configForFrontEnd('resnet', 'mfcc-flowmur');
    manualSeed(1);
    const tiny = makeFeatureSet(
      tidy(() => randn([6, ...inputShape])),
      [0, 1, 2, 0, 1, 2],
      ['a', 'b', 'c'],
    );
    const checked: string[] = [];
    try {
      for (const name of defenseNames()) {
        const spec = getDefense(name);
        if (!spec.needsData) continue; // CLP is data-free: it is given no clips at all
        assert.ok(spec.minCleanClips > 6, `${name}'s minimum (${spec.minCleanClips}) is above the 6 clips given`);
        const model: KwsModel = buildModel('resnet', { ...config, classes: 3 });
        const info = { name: 'resnet', neuronLayers: getModelSpec('resnet').neuronLayers(model) };
        try {
          await assert.rejects(
            spec.run(model, tiny, { options: shortOptions(name), seed: 0, model: info }),
            (e: Error) => e.message === `${name} needs at least ${spec.minCleanClips} clean clips, got 6; raise --clean-ratio`,
          );
          checked.push(name);
        } finally {
          model.dispose();
        }
      }
    } finally {
      disposeFeatureSet(tiny);
    }
    assert.deepEqual(
      checked,
      defenseNames().filter((n) => getDefense(n).needsData),
    );
    assert.ok(checked.length >= 8, `checked ${checked.join(', ')}`);
  });
});
