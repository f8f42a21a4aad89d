// The arithmetic of every results table: mean and sample standard deviation, finite values only where asked,
// and their text.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { finiteMeanStd, groupBy, lastPerKey, meanStd, meanStdText } from './aggregate.ts';

describe('meanStd', () => {
  it('is the mean and the sample standard deviation', () => {
    const xs = [0.9, 0.8, 0.95, 0.85];
    const mean = (0.9 + 0.8 + 0.95 + 0.85) / 4;
    const sd = Math.sqrt(((0.9 - mean) ** 2 + (0.8 - mean) ** 2 + (0.95 - mean) ** 2 + (0.85 - mean) ** 2) / 3);
    const s = meanStd(xs)!;
    assert.ok(Math.abs(s.mean - mean) < 1e-12);
    assert.ok(Math.abs(s.std - sd) < 1e-12);
    assert.equal(s.n, 4);
  });
  it('has no spread for one value and nothing for none', () => {
    assert.deepEqual(meanStd([0.5]), { mean: 0.5, std: 0, n: 1 });
    assert.equal(meanStd([]), undefined);
  });
});

describe('finiteMeanStd and meanStdText', () => {
  it('leaves out what is not a finite number, and says n/a for nothing', () => {
    assert.deepEqual(finiteMeanStd([0.5, Number.NaN, 0.7]), meanStd([0.5, 0.7]));
    assert.equal(finiteMeanStd([Number.NaN]).n, 0);
    assert.equal(meanStdText(finiteMeanStd([]), '-'), '-');
    assert.equal(meanStdText(meanStd([0.5]), '-'), '50.0');
    assert.equal(meanStdText(meanStd([0.5, 0.7]), '-'), '60.0 ± 14.1');
  });
});

describe('groupBy and lastPerKey', () => {
  it('keep the order first seen; lastPerKey keeps one value per key, the last', () => {
    assert.deepEqual(
      [...groupBy(['b1', 'a1', 'b2'], (s) => s[0]).entries()],
      [
        ['b', ['b1', 'b2']],
        ['a', ['a1']],
      ],
    );
    assert.deepEqual(
      lastPerKey(
        ['b1', 'a1', 'b2'],
        (s) => s[0],
        (s) => s[1],
      ),
      ['2', '1'],
    );
  });
});
