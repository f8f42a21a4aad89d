// The demo's table told in words: which effect each ASR change is called, and the sentences built from
// result files (the attack first, then the defenses from the lowest ASR after).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backdoorEffect, demoDefenses, demoStory, shortenedBudgets } from '../src/cli/commands/demo.ts';
import { defenseNames } from '../src/defenses/index.ts';
import type { JobResult } from '../src/experiments/grid/result.ts';

describe('demo story', () => {
  it('names what a defense did to the attack success rate', () => {
    assert.equal(backdoorEffect(0.98, 0.05), 'removed the backdoor');
    assert.equal(backdoorEffect(0.98, 0.3), 'removed most of the backdoor');
    assert.equal(backdoorEffect(0.98, 0.7), 'removed some of the backdoor');
    assert.equal(backdoorEffect(0.98, 0.95), 'left the backdoor in place');
  });

  it('tells the attack, then each defense from the most effective', () => {
    const attack = { job: { kind: 'attack', target: 'up' }, status: 'ok', metrics: { ca: 0.9, asr: 0.95, ra: 0.05 }, clean: { ca: 0.92, asr: 0.01, ra: 0.9 } };
    const ft = { job: { kind: 'defense', defense: 'ft', recipe: 'paper' }, status: 'ok', metrics: { ca: 0.9, asr: 0.94, ra: 0.05 } };
    const gnft = { job: { kind: 'defense', defense: 'gnft', recipe: 'default' }, status: 'ok', metrics: { ca: 0.87, asr: 0.04, ra: 0.85 } };
    const story = demoStory([ft, attack, gnft] as unknown as JobResult[]);
    assert.equal(story.length, 4);
    assert.match(story[0], /90\.0% of the clean test clips .*92\.0%/);
    assert.match(story[1], /95\.0% of the triggered clips are called 'up' \(the clean model: 1\.0%\)/);
    assert.equal(story[2], 'gnft (default): removed the backdoor (ASR 95.0% -> 4.0%), clean accuracy 3.0 points lower.');
    assert.equal(story[3], 'ft: left the backdoor in place (ASR 95.0% -> 94.0%), clean accuracy unchanged.');
  });

  it('says nothing when the attack job did not finish', () => {
    assert.deepEqual(demoStory([]), []);
  });

  it('runs every defense in the full demo and names what it shortened against the recipe', () => {
    const full = demoDefenses(false, false);
    assert.deepEqual([...new Set(full.map((d) => d.defense))].sort(), [...defenseNames()].sort());
    assert.deepEqual(shortenedBudgets(full).sort(), ['anp 100 of 1000 iterations', 'gnft (paper) 40 of 300 epochs']);
    assert.deepEqual(shortenedBudgets(demoDefenses(false, true)), []);
    assert.ok(shortenedBudgets(demoDefenses(true, false)).includes('gnft (default) 40 of 60 epochs'));
  });
});
