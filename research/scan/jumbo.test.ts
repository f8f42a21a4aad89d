// The jumbo shadow backdoor (research/scan/jumbo.ts, for scan-meta.ts's shadow models): registered only when imported,
// each seed's pattern confined to its window at its drawn peak, and a trigger that is deterministic and changes clips.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attackNames, getAttack } from '../../src/attacks/index.ts';
import { getFrontEnd } from '../../src/audio/frontends.ts';
import { createRng } from '../../src/data/rng.ts';
import { tensor, tidy } from '../../src/torch/index.ts';
import { drawJumbo, jumboWave } from './jumbo.ts';

describe('jumbo (research)', () => {
  it('is registered by importing it, after the seven product attacks', () => {
    assert.equal(attackNames().at(-1), 'jumbo');
    assert.equal(attackNames().length, 8);
  });

  it('jumbo: each seed draws its own pattern, confined to its window, at its drawn peak; every kind is reachable', () => {
    const kinds = new Set<string>();
    for (let seed = 0; seed < 40; seed++) {
      const p = drawJumbo(seed, 'random');
      kinds.add(p.kind);
      const wave = jumboWave(p, seed, 16000, 16000);
      const first = Math.round(p.start * 16000);
      const last = first + Math.round(p.length * 16000);
      let peak = 0;
      wave.forEach((v, i) => {
        if (i < first || i >= last) assert.equal(v, 0, `seed ${seed}: sample ${i} outside [${first}, ${last}) is ${v}`);
        peak = Math.max(peak, Math.abs(v));
      });
      assert.ok(Math.abs(peak - p.peak) < 1e-6, `seed ${seed}: peak ${peak}, drawn ${p.peak}`);
      assert.ok(p.peak >= 0.02 && p.peak <= 0.3 && p.length >= 0.04 && p.length <= 0.4 && p.start + p.length <= 1);
    }
    assert.deepEqual([...kinds].sort(), ['chirp', 'clicks', 'noise', 'tone']);
    assert.notDeepEqual(drawJumbo(1, 'random'), drawJumbo(2, 'random'));
    assert.equal(drawJumbo(3, 'tone').kind, 'tone');
  });

  it('its trigger is deterministic for a seed and changes the clip', async () => {
    const frontEnd = getFrontEnd('mfcc-16k');
    const labels = Array.from({ length: 40 }, (_, i) => i % 4);
    const { artifact } = await getAttack('jumbo').prepare({
      options: {},
      seed: 7,
      frontEnd,
      classes: ['yes', 'no', 'up', 'down'],
      targetLabel: 2,
      poisonRatio: 0.1,
      train: {
        labels,
        loadWaves: async (indices) => tensor(new Float32Array(indices.length * frontEnd.inputSamples), [indices.length, frontEnd.inputSamples]),
      },
    });
    const trigger = getAttack('jumbo').trigger(artifact, 'test', getFrontEnd(artifact.frontEnd));
    tidy(() => {
      const rng = createRng(3);
      const x = tensor(
        Float32Array.from({ length: 2 * 16000 }, () => 0.01 * rng.normal()),
        [2, 16000],
      );
      const a = trigger.apply(x, createRng(1), [0, 1]);
      assert.deepEqual(a.toFloat32Array(), trigger.apply(x, createRng(2), [0, 1]).toFloat32Array());
      assert.ok(a.sub(x).abs().max().item() > 1e-3);
    });
  });
});
