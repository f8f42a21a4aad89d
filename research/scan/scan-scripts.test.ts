// The zoo and STRIP scripts' summaries on known inputs: AUROC per score, accuracy and rates at the
// default threshold, target hits, the rank combination, and STRIP's rates at its threshold.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { failedAttack, familyFor, verdictOf } from './fresh-zoo-summary.ts';
import { type ReferenceRow, summariseReferences } from './scan-references.ts';
import { percentileRanks, type ZooRow, zooSummary } from './scan-zoo.ts';
import { stabilitySummary, stripSummary } from './strip-auroc.ts';

const row = (label: ZooRow['label'], nc: number, gradient: number, o: Partial<ZooRow> = {}): ZooRow => ({
  run: `/runs/${label}-${nc}`,
  label,
  family: 'resnet',
  target: label === 'backdoored' ? 'up' : null,
  verdict: nc > 2 ? 'backdoored' : 'clean',
  nc,
  threshold: 2,
  gradient,
  suspect: 'up',
  seconds: 1,
  ...o,
});

describe('scan-zoo summary', () => {
  it('AUROC per score, accuracy and rates at the threshold, target hits', () => {
    const rows = [
      row('backdoored', 5, 0.1),
      row('backdoored', 3, 0.4),
      row('backdoored', 1.5, 0.3, { suspect: 'down' }),
      row('clean', 2.5, 0.2, { suspect: 'yes' }),
      row('clean', 1, 0.5),
      row('clean', 0.5, 0.0),
    ];
    const { all, byFamily } = zooSummary(rows);
    // nc: positives 5, 3, 1.5 vs negatives 2.5, 1, 0.5: 8 of 9 pairs won.
    assert.equal(all.auroc.nc, 8 / 9);
    // gradient: positives 0.1, 0.4, 0.3 vs 0.2, 0.5, 0.0: (0.1: 1) + (0.4: 2) + (0.3: 2) = 5 of 9.
    assert.equal(all.auroc.gradient, 5 / 9);
    // verdicts: backdoored, backdoored, clean | backdoored, clean, clean -> 4 of 6 right.
    assert.equal(all.accuracy, 4 / 6);
    assert.equal(all.tpr, 2 / 3);
    assert.equal(all.fpr, 1 / 3);
    assert.deepEqual(all.targetHits, { hits: 2, of: 3, share: 2 / 3 });
    assert.deepEqual(all.targetHitsFlagged, { hits: 2, of: 2, share: 1 });
    assert.equal(all.models, 6);
    assert.deepEqual(Object.keys(byFamily), ['resnet']);
    // Combined = mean percentile rank of both scores.
    const nc = percentileRanks(rows.map((r) => r.nc));
    const g = percentileRanks(rows.map((r) => r.gradient));
    const c = rows.map((_, i) => (nc[i] + g[i]) / 2);
    let wins = 0;
    for (let i = 0; i < 3; i++) for (let j = 3; j < 6; j++) wins += c[i] > c[j] ? 1 : c[i] === c[j] ? 0.5 : 0;
    assert.equal(all.auroc.combined, wins / 9);
  });

  it('percentile ranks share ties and span [0, 1]', () => {
    assert.deepEqual(percentileRanks([10, 30, 20]), [0, 1, 0.5]);
    assert.deepEqual(percentileRanks([1, 1, 2]), [0.25, 0.25, 1]);
  });

  it('families are summarised apart', () => {
    const rows = [row('backdoored', 5, 0), row('clean', 1, 0), row('backdoored', 1, 0, { family: 'lstm' }), row('clean', 3, 0, { family: 'lstm' })];
    const { byFamily } = zooSummary(rows);
    assert.equal(byFamily.resnet.auroc.nc, 1);
    assert.equal(byFamily.lstm.auroc.nc, 0);
    assert.equal(byFamily.lstm.fpr, 1);
  });
});

describe('strip-auroc summary', () => {
  it('lower entropy is the positive direction; rates at the threshold', () => {
    const s = stripSummary([0.1, 0.2, 0.9], [0.5, 1.0, 1.5], 0.3);
    // pairs (triggered lower than clean): 0.1 < all 3, 0.2 < all 3, 0.9: lower than 1.0 and 1.5 -> 8 of 9
    assert.equal(s.auroc, 8 / 9);
    assert.equal(s.tpr, 2 / 3);
    assert.equal(s.fpr, 0);
    assert.ok(Math.abs(s.entropy.triggered - 0.4) < 1e-12);
    assert.equal(s.entropy.clean, 1);
  });
});

describe('fresh-zoo summary', () => {
  const family = (name: string, pValue: number, score: number, fired = pValue === 1 / 9) => ({
    family: name,
    pValue,
    fired,
    target: `${name}-class`,
    score,
    referenceScores: [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8],
  });

  it('the verdict from a subset of families: found if one fires, p = K x the smallest, the target of that family', () => {
    const all = [family('transform', 1 / 9, 0.9), family('additive', 5 / 9, 0.3), family('subspace', 1, -0.1)];
    const v = verdictOf(all);
    assert.deepEqual({ found: v.found, target: v.target }, { found: true, target: 'transform-class' });
    assert.ok(Math.abs(v.pValue - 3 / 9) < 1e-12);
    const without = verdictOf(all.slice(1));
    assert.deepEqual({ found: without.found, target: without.target }, { found: false, target: 'additive-class' });
    assert.equal(without.pValue, 1); // 2 x 5/9, capped at 1
    // the tie-break stays within a thousandth of 1 - p, larger for a larger margin
    assert.ok(Math.abs(v.tieBroken - (1 - v.pValue)) <= 1e-3);
    assert.ok(verdictOf([family('transform', 1 / 9, 2)]).tieBroken > verdictOf([family('transform', 1 / 9, 0.9)]).tieBroken);
  });

  it('FlowMur under 50% ASR is a failed attack, nothing else is; every attack has the family built for it', () => {
    assert.equal(failedAttack('flowmur', 0.49), true);
    assert.equal(failedAttack('flowmur', 0.5), false);
    assert.equal(failedAttack('daba', 0.1), false);
    assert.deepEqual(new Set(Object.values(familyFor)), new Set(['transform', 'additive', 'subspace']));
    assert.equal(Object.keys(familyFor).length, 7);
  });

  it('label stability: larger scores are the positive direction; rates strictly above the threshold', () => {
    const s = stabilitySummary([0.5, 0.2, -0.4], [-0.8, -0.4, 0.2], 0.2);
    // pairs (triggered above clean): 0.5 > 3, 0.2 > 2 (tie with 0.2 counts half) -> 2.5, -0.4 > -0.8 and ties -0.4 -> 1.5: 7 of 9
    assert.equal(s.auroc, 7 / 9);
    assert.equal(s.tpr, 1 / 3);
    assert.equal(s.fpr, 0);
  });
});

describe('scan-references summary', () => {
  const refRow = (label: ReferenceRow['label'], t: number, p: number, suspect = 'up'): ReferenceRow => ({
    run: `/runs/${label}-${t}`,
    label,
    group: 'zoo',
    configuration: 'resnet/mfcc-16k/a,b',
    target: label === 'backdoored' ? 'up' : null,
    references: 8,
    scores: {
      meanProb: { verdict: p < 0.05 ? 'backdoored' : 'clean', t, p, suspect },
      offClassLogProb: { verdict: 'clean', t: -t, p: 1, suspect: 'down' },
    },
  });

  it('AUROC by the largest t, rates at alpha from the verdicts, target hits per statistic', () => {
    const rows = [
      refRow('backdoored', 9, 0.001),
      refRow('backdoored', 4, 0.02, 'down'),
      refRow('backdoored', 2, 0.3),
      refRow('clean', 3, 0.1),
      refRow('clean', 1, 0.9),
    ];
    const s = summariseReferences(rows, 'meanProb');
    // positives 9, 4, 2 against negatives 3, 1: 5 of 6 pairs ordered
    assert.equal(s.auroc, 5 / 6);
    assert.deepEqual({ tpr: s.tpr, fpr: s.fpr, accuracy: s.accuracy }, { tpr: 2 / 3, fpr: 0, accuracy: 4 / 5 });
    assert.equal(s.targetHits, '2 of 3');
    const other = summariseReferences(rows, 'offClassLogProb');
    assert.equal(other.auroc, 1 / 6);
    assert.equal(other.tpr, 0);
    assert.equal(other.targetHits, '0 of 3');
  });
});
