import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inflateSync } from 'node:zlib';
import { encodePng } from './png.ts';
import { difference, featureGrid, gridPng, robustRange, stftGrid, symmetricRange } from './spectrogram.ts';

describe('stftGrid', () => {
  it('puts a sine at the bin of its frequency', () => {
    const rate = 16000;
    const hz = 2500;
    const samples = Float32Array.from({ length: 4096 }, (_, i) => Math.sin((2 * Math.PI * hz * i) / rate));
    const g = stftGrid(samples, rate, 512);
    assert.equal(g.bins, 257);
    const t = Math.floor(g.frames / 2);
    const column = Array.from(g.values.subarray(t * g.bins, (t + 1) * g.bins));
    const peak = column.indexOf(Math.max(...column));
    assert.equal(peak, Math.round((hz / rate) * 512));
    assert.equal(g.yMax, 8, 'the y axis reaches the Nyquist frequency in kHz');
  });
});

describe('colour ranges', () => {
  it('ignores a few extreme cells', () => {
    const values = Float32Array.from({ length: 1000 }, (_, i) => (i < 10 ? -200 : i % 10));
    const [lo, hi] = robustRange(values);
    assert.ok(lo >= 0 && hi <= 9, `${lo}..${hi}`);
  });
  it('spans the cells a trigger changed, symmetric about 0', () => {
    const clean = featureGrid(new Float32Array(100).fill(1), 10, 10, 1);
    const triggered = featureGrid(
      Float32Array.from({ length: 100 }, (_, i) => (i < 4 ? -199 : 1)),
      10,
      10,
      1,
    );
    assert.deepEqual(symmetricRange(difference(clean, triggered).values), [-200, 200]);
  });
});

describe('gridPng', () => {
  it('writes a PNG whose rows decode to the grid, high bins on top', () => {
    const grid = featureGrid(Float32Array.from([0, 1, 0, 1, 0, 1]), 3, 2, 1); // 3 frames x 2 bins: bin 1 high
    const png = gridPng(grid, [0, 1], 'greys');
    assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
    const view = new DataView(png.buffer, png.byteOffset);
    assert.equal(view.getUint32(16), 3, 'width = frames');
    assert.equal(view.getUint32(20), 2, 'height = bins');
    const idatLength = view.getUint32(33);
    const raw = inflateSync(png.subarray(41, 41 + idatLength));
    assert.equal(raw.length, 2 * (1 + 3 * 3));
    const top = raw[1];
    const bottom = raw[1 + 10];
    assert.notEqual(top, bottom, 'the two bins differ in colour');
    assert.ok(top < bottom, "'greys' is dark at 1: the high bin (value 1) is the dark top row");
  });
  it('refuses a buffer of the wrong size', () => {
    assert.throws(() => encodePng(2, 2, new Uint8Array(5)), /5 bytes for a 2x2/);
  });
});
