// The reference scan: the Student t tail against tabled quantiles, the per-class test on known numbers, the
// class profile against a hand computation from the model's logits, and no tensor left behind.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { disposeFeatureSet } from '../../src/data/feature-set.ts';
import { memory, noGrad, tidy } from '../../src/torch/index.ts';
import { toySet, trainToy } from '../../test/helpers/analysis-toys.ts';
import { classProfile, compareWithReferences, logGamma, regularizedBeta, studentTUpperTail } from './reference-scan.ts';

describe('Student t upper tail', () => {
  it('matches tabled quantiles', () => {
    // (t, df, P(T > t)): the Cauchy case exactly, the rest from standard t tables
    const table: [number, number, number][] = [
      [0, 4, 0.5],
      [1, 1, 0.25],
      [2.015048, 5, 0.05],
      [3.499483, 7, 0.005],
      [1.697261, 30, 0.05],
      [6.313752, 1, 0.05],
    ];
    for (const [t, df, p] of table) {
      assert.ok(Math.abs(studentTUpperTail(t, df) - p) < 1e-6, `t ${t} df ${df}: ${studentTUpperTail(t, df)} vs ${p}`);
      assert.ok(Math.abs(studentTUpperTail(-t, df) - (1 - p)) < 1e-6, `-t ${t} df ${df}`);
    }
  });

  it('rests on a log-gamma and an incomplete beta that are right', () => {
    assert.ok(Math.abs(logGamma(5) - Math.log(24)) < 1e-12);
    assert.ok(Math.abs(logGamma(0.5) - 0.5 * Math.log(Math.PI)) < 1e-12);
    // I_x(1, 1) = x and I_x(2, 1) = x^2
    assert.ok(Math.abs(regularizedBeta(0.3, 1, 1) - 0.3) < 1e-12);
    assert.ok(Math.abs(regularizedBeta(0.7, 2, 1) - 0.49) < 1e-12);
    assert.throws(() => studentTUpperTail(1, 0), /degrees of freedom/);
  });
});

describe('compareWithReferences', () => {
  const classes = ['a', 'b', 'c', 'd'];
  const references = [
    [0.3, 0.3, 0.2, 0.2],
    [0.32, 0.28, 0.21, 0.19],
    [0.29, 0.31, 0.19, 0.21],
    [0.31, 0.29, 0.2, 0.2],
  ];

  it('flags a class far above the references and names it', () => {
    const r = compareWithReferences([0.2, 0.25, 0.2, 0.35], references, classes, { statistic: 'meanProb' });
    assert.equal(r.verdict, 'backdoored');
    assert.equal(r.suspectTarget, 'd');
    // by hand: the references' d are 0.2, 0.19, 0.21, 0.2: mean 0.2, sd sqrt(0.0002 / 3)
    const t = (0.35 - 0.2) / (Math.sqrt(0.0002 / 3) * Math.sqrt(1 + 1 / 4));
    assert.ok(Math.abs(r.score - t) < 1e-9, `${r.score} vs ${t}`);
    assert.ok(Math.abs(r.pValue - Math.min(1, 4 * studentTUpperTail(t, 3))) < 1e-12);
  });

  it('does not flag a model like its references, nor one lower on every class', () => {
    assert.equal(compareWithReferences([0.3, 0.3, 0.2, 0.2], references, classes, { statistic: 'meanProb' }).verdict, 'clean');
    assert.equal(compareWithReferences([0.1, 0.1, 0.1, 0.1], references, classes, { statistic: 'meanProb' }).verdict, 'clean');
  });

  it('refuses fewer than 3 references and values that do not fit the classes', () => {
    assert.throws(() => compareWithReferences([0.3, 0.3, 0.2, 0.2], references.slice(0, 2), classes, { statistic: 'meanProb' }), /at least 3/);
    assert.throws(() => compareWithReferences([0.3, 0.3, 0.4], references, classes, { statistic: 'meanProb' }), /3 values for 4 classes/);
  });
});

describe('classProfile', () => {
  const model = trainToy({ seed: 3, steps: 40 });
  const clean = toySet(40, 21);
  after(() => {
    disposeFeatureSet(clean);
    model.dispose();
  });

  it('is the mean softmax, and the log mean softmax on the other classes, computed by hand from the logits', () => {
    const live = memory().liveTensors;
    const profile = classProfile(model, clean, 16);
    assert.equal(memory().liveTensors, live);
    model.eval();
    const logits = noGrad(() => tidy(() => model.forward(clean.features).toArray())) as number[];
    const k = clean.classes.length;
    const sum = new Array(k).fill(0);
    const off = new Array(k).fill(0);
    const offCount = new Array(k).fill(0);
    for (let r = 0; r < clean.size; r++) {
      const row = logits.slice(r * k, (r + 1) * k);
      const top = Math.max(...row);
      const z = row.reduce((a, v) => a + Math.exp(v - top), 0);
      row.forEach((v, c) => {
        const p = Math.exp(v - top) / z;
        sum[c] += p;
        if (clean.labelList[r] !== c) {
          off[c] += p;
          offCount[c]++;
        }
      });
    }
    profile.meanProb.forEach((p, c) => assert.ok(Math.abs(p - sum[c] / clean.size) < 1e-5, `class ${c}`));
    profile.offClassLogProb.forEach((p, c) => assert.ok(Math.abs(p - Math.log(off[c] / offCount[c])) < 1e-4, `class ${c}`));
    assert.ok(Math.abs(profile.meanProb.reduce((a, b) => a + b, 0) - 1) < 1e-5);
  });
});
