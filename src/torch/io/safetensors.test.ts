import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { dtypeCode } from '../dtype.ts';
import { native } from '../native.ts';
import { tensor } from '../ops/creation.ts';
import { memory, tidy } from '../scope.ts';
import { Tensor } from '../tensor.ts';
import { decodeSafetensors, encodeSafetensors, loadSafetensors, readSafetensorsHeader, SafetensorsError, saveSafetensors } from './index.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'kwshield-safetensors-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const float16Bits = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001]); // 1, -2, 65504, smallest subnormal
const bfloat16Bits = new Uint16Array([0x3f80, 0xc040]); // 1, -3

/** A tensor of any dtype from its raw little-endian bytes. */
function fromBits(bits: Uint16Array, shape: number[], dtype: 'float16' | 'bfloat16'): Tensor {
  return new Tensor(native.fromTypedArray(bits, shape, dtypeCode(dtype), undefined, true));
}

function sampleTensors(): Record<string, Tensor> {
  return {
    'conv.weight': tensor(new Float32Array([0.5, -1.25, 3e-38, Number.NaN, Number.POSITIVE_INFINITY, -0]), [1, 2, 3]),
    double: tensor(new Float64Array([Math.PI, -Number.MAX_VALUE]), [2]),
    'bn.num_batches_tracked': tensor(new BigInt64Array([2n ** 62n + 1n]), []),
    ints: tensor(new Int32Array([-(2 ** 31), 2 ** 31 - 1, 7]), [3, 1]),
    bytes: tensor(new Uint8Array([0, 1, 255]), [3]),
    flags: tensor(new Uint8Array([1, 0, 1, 1]), [2, 2], { dtype: 'bool' }),
    half: fromBits(float16Bits, [2, 2], 'float16'),
    brain: fromBits(bfloat16Bits, [2], 'bfloat16'),
    small: tensor(new Int16Array([-300, 300]), [2]),
    tiny: tensor(new Int8Array([-128]), [1]),
    scalar: tensor(new Float32Array([42]), []),
    empty: tensor(new Float32Array([]), [0, 3]),
  };
}

/** A file made of an explicit header (object or raw text) and data buffer, padded as a writer would. */
function rawFile(header: unknown, data: Uint8Array | number = 0, lengthField?: bigint): Uint8Array {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, lengthField ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

/** Both the full reader and the header reader refuse the file; `dataOnly` faults are invisible to the latter. */
function expectRejected(bytes: Uint8Array, name: string, pattern: RegExp, dataOnly = false): void {
  const file = path.join(dir, `${name}.safetensors`);
  writeFileSync(file, bytes);
  const readers = [() => tidy(() => void loadSafetensors(file))];
  if (!dataOnly) readers.push(() => void readSafetensorsHeader(file));
  for (const read of readers) {
    assert.throws(read, (err: unknown) => {
      assert.ok(err instanceof SafetensorsError, `expected a SafetensorsError, got ${String(err)}`);
      assert.ok(err.message.includes(file), `message should name the file: ${err.message}`);
      assert.match(err.message, pattern);
      return true;
    });
  }
}

describe('safetensors', () => {
  it('round-trips every stored dtype, scalars and empty tensors, bit for bit', () => {
    tidy(() => {
      const original = sampleTensors();
      const { tensors, metadata } = decodeSafetensors(encodeSafetensors(original), 'memory');
      assert.deepEqual(metadata, {});
      assert.deepEqual([...tensors.keys()].sort(), Object.keys(original).sort());
      for (const [name, t] of Object.entries(original)) {
        const back = tensors.get(name) as Tensor;
        assert.equal(back.dtype, t.dtype, name);
        assert.deepEqual(back.shape, t.shape, name);
        assert.deepEqual(back.bytes(), t.bytes(), name);
      }
      const get = (name: string) => {
        const t = tensors.get(name);
        assert.ok(t, `tensor ${name} is missing`);
        return t;
      };
      assert.deepEqual(get('half').to('float32').toArray(), [1, -2, 65504, 2 ** -24]);
      assert.deepEqual(get('brain').to('float32').toArray(), [1, -3]);
      assert.equal((get('bn.num_batches_tracked').data() as BigInt64Array)[0], 2n ** 62n + 1n);
      assert.deepEqual(get('flags').toArray(), [1, 0, 1, 1]);
      assert.equal(get('flags').dtype, 'bool');
      assert.deepEqual(get('empty').shape, [0, 3]);
      assert.equal(get('scalar').item(), 42);
    });
  });

  it('stores non-contiguous tensors (views, channels-last) in logical row-major order', () => {
    tidy(() => {
      const base = tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
      const channelsLast = tensor(
        new Float32Array(24).map((_, i) => i),
        [1, 2, 3, 4],
      ).contiguous('channelsLast');
      const { tensors } = decodeSafetensors(encodeSafetensors({ t: base.transpose(0, 1), c: channelsLast }), 'memory');
      assert.deepEqual(tensors.get('t')?.shape, [3, 2]);
      assert.deepEqual(tensors.get('t')?.toArray(), [1, 4, 2, 5, 3, 6]);
      assert.deepEqual(tensors.get('c')?.toArray(), channelsLast.toArray());
    });
  });

  it('accepts a Map, writes tensors in name order and round-trips metadata', () => {
    tidy(() => {
      const map = new Map([
        ['b', tensor(new Float32Array([1]), [1])],
        ['10', tensor(new Float32Array([2]), [1])],
        ['a', tensor(new Float32Array([3]), [1])],
      ]);
      const metadata = { format: 'pt', note: 'ünïcode "quoted"\n', empty: '' };
      const file = path.join(dir, 'map.safetensors');
      saveSafetensors(file, map, metadata);
      const header = readSafetensorsHeader(file);
      assert.deepEqual(
        header.entries.map((e) => [e.name, e.dataOffsets]),
        [
          ['10', [0, 4]],
          ['a', [4, 8]],
          ['b', [8, 12]],
        ],
      );
      assert.equal((8 + header.headerBytes) % 8, 0, 'data starts 8-byte aligned');
      assert.equal(header.dataBytes, 12);
      const loaded = loadSafetensors(file);
      assert.deepEqual(loaded.metadata, metadata);
      assert.deepEqual(loaded.tensors.get('10')?.toArray(), [2]);
      const text = Buffer.from(readFileSync(file))
        .subarray(8, 8 + header.headerBytes)
        .toString('utf8');
      assert.ok(text.startsWith('{"__metadata__":{'), text);
    });
  });

  it('writes the exact bytes of the reference format', () => {
    tidy(() => {
      const bytes = encodeSafetensors({ a: tensor(new Float32Array([1, -2]), [2]) });
      // 54 bytes of JSON padded with 2 spaces to 56, so the data starts at 64.
      const expected = [
        ...[56, 0, 0, 0, 0, 0, 0, 0],
        ...Buffer.from('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}  ', 'utf8'),
        ...[0x00, 0x00, 0x80, 0x3f], // 1.0f little-endian
        ...[0x00, 0x00, 0x00, 0xc0], // -2.0f
      ];
      assert.deepEqual(Array.from(bytes), expected);

      const withMetadata = encodeSafetensors({ b: tensor(new Int8Array([-1]), []) }, { format: 'pt' });
      const expectedWithMetadata = [
        ...[88, 0, 0, 0, 0, 0, 0, 0],
        ...Buffer.from('{"__metadata__":{"format":"pt"},"b":{"dtype":"I8","shape":[],"data_offsets":[0,1]}}     ', 'utf8'),
        0xff,
      ];
      assert.deepEqual(Array.from(withMetadata), expectedWithMetadata);

      // An empty dictionary is a valid file too.
      assert.deepEqual(Array.from(encodeSafetensors({})), [8, 0, 0, 0, 0, 0, 0, 0, ...Buffer.from('{}      ')]);
      assert.equal(decodeSafetensors(encodeSafetensors({}), 'memory').tensors.size, 0);
    });
  });

  it('reads a hand-made file with unpadded header, extra fields and data in a different order', () => {
    tidy(() => {
      const data = new Uint8Array([7, 0, 0, 0, 0, 0, 0, 0, 5]);
      const header = { z: { dtype: 'I64', shape: [1], data_offsets: [0, 8], extra: true }, a: { dtype: 'U8', shape: [1], data_offsets: [8, 9] } };
      const { tensors } = decodeSafetensors(rawFile(header, data), 'hand-made', { device: 'cpu' });
      assert.deepEqual(tensors.get('z')?.toArray(), [7]);
      assert.deepEqual(tensors.get('a')?.toArray(), [5]);
      assert.equal(tensors.get('a')?.device, 'cpu');
    });
  });

  it('rejects damaged files with a SafetensorsError naming the file', () => {
    const valid = tidy(() => encodeSafetensors({ w: tensor(new Float32Array([1, 2]), [2]) }));
    const f32 = (shape: unknown, data_offsets: unknown) => ({ dtype: 'F32', shape, data_offsets });

    expectRejected(new Uint8Array(0), 'empty', /0 bytes long, shorter than the 8-byte/);
    expectRejected(valid.subarray(0, 5), 'truncated-prefix', /5 bytes long/);
    expectRejected(valid.subarray(0, 30), 'truncated-header', /header length field says 56 bytes but only 22/);
    expectRejected(valid.subarray(0, valid.length - 1), 'truncated-data', /ends at byte 8 of the data buffer, which holds only 7/);
    const lying = valid.slice();
    new DataView(lying.buffer).setBigUint64(0, BigInt(valid.length), true);
    expectRejected(lying, 'lying-length', /header length field says \d+ bytes but only/);
    const huge = valid.slice();
    new DataView(huge.buffer).setBigUint64(0, 2n ** 40n, true);
    expectRejected(huge, 'huge-length', /1099511627776 bytes, over the 100000000-byte limit/);
    expectRejected(rawFile('{"w": {"dtype": "F32", ', 8), 'invalid-json', /not valid UTF-8 JSON/);
    const badUtf8 = rawFile('{"\u00e9":1}');
    badUtf8[10] = 0xff; // breaks the two-byte sequence of é
    expectRejected(badUtf8, 'invalid-utf8', /not valid UTF-8 JSON/);
    expectRejected(rawFile('[1, 2]'), 'array-header', /not an object of tensors/);
    expectRejected(rawFile({ w: f32([2], [0, 16]) }, 8), 'offsets-out-of-range', /ends at byte 16 of the data buffer, which holds only 8/);
    expectRejected(rawFile({ a: f32([2], [0, 8]), b: f32([2], [4, 12]) }, 12), 'overlap', /'b' \(bytes 4\.\.12\) overlaps tensor 'a'/);
    expectRejected(rawFile({ a: f32([1], [0, 4]), b: f32([1], [8, 12]) }, 12), 'hole', /bytes 4\.\.8 of the data buffer belong to no tensor/);
    expectRejected(rawFile({ a: f32([1], [0, 4]) }, 8), 'trailing', /cover 4 bytes but the data buffer holds 8/);
    expectRejected(rawFile({ w: f32([3], [0, 8]) }, 8), 'size-mismatch', /8 bytes of data, but shape \[3\] of F32 needs 12/);
    expectRejected(
      rawFile({ w: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, 8),
      'unknown-dtype',
      /dtype "C64", which kwshield does not read.*Supported: F64/,
    );
    expectRejected(rawFile({ w: { shape: [1], data_offsets: [0, 4] } }, 4), 'missing-dtype', /dtype missing/);
    expectRejected(rawFile({ w: f32([-1], [0, 4]) }, 4), 'negative-shape', /shape \[-1\]; a shape is an array of non-negative integers/);
    expectRejected(rawFile({ w: f32([1.5], [0, 4]) }, 4), 'fractional-shape', /non-negative integers/);
    expectRejected(rawFile({ w: f32('2', [0, 8]) }, 8), 'string-shape', /non-negative integers/);
    expectRejected(rawFile({ w: f32([1], [0]) }, 4), 'one-offset', /two non-negative integers/);
    expectRejected(rawFile({ w: f32([1], [0, '4']) }, 4), 'string-offset', /two non-negative integers/);
    expectRejected(rawFile({ w: f32([0], [4, 0]) }, 4), 'begin-after-end', /begin after end/);
    expectRejected(rawFile({ w: 5 }), 'entry-not-object', /described by 5/);
    expectRejected(rawFile({ '': f32([1], [0, 4]) }, 4), 'empty-name', /empty name/);
    expectRejected(rawFile({ __metadata__: { n: 1 } }), 'metadata-number', /metadata 'n' is 1; metadata values must be strings/);
    expectRejected(rawFile({ __metadata__: ['x'] }), 'metadata-array', /not an object of strings/);
    expectRejected(rawFile({ w: f32([2 ** 40, 2 ** 40], [0, 4]) }, 4), 'too-many-elements', /too many elements/);
    expectRejected(rawFile({ b: { dtype: 'BOOL', shape: [2], data_offsets: [0, 2] } }, new Uint8Array([1, 2])), 'bad-bool', /holds byte 2 at element 1/, true);
  });

  it('saves atomically: no temporary file is left, an existing file is replaced whole', () => {
    tidy(() => {
      const sub = mkdtempSync(path.join(dir, 'atomic-'));
      const file = path.join(sub, 'model.safetensors');
      saveSafetensors(file, { w: tensor(new Float32Array([1]), [1]) });
      saveSafetensors(file, { w: tensor(new Float32Array([2, 3]), [2]) });
      assert.deepEqual(readdirSync(sub), ['model.safetensors']);
      assert.deepEqual(loadSafetensors(file).tensors.get('w')?.toArray(), [2, 3]);

      const disposed = tensor(new Float32Array([1]), [1]);
      disposed.dispose();
      assert.throws(
        () => saveSafetensors(file, { w: disposed }),
        (err: unknown) => err instanceof SafetensorsError && /disposed/.test(err.message),
      );
      assert.throws(() => saveSafetensors(file, { w: tensor(new Float32Array([1]), [1]) }, { n: 1 as unknown as string }), SafetensorsError);
      assert.throws(() => saveSafetensors(path.join(sub, 'missing-dir', 'x.safetensors'), { w: tensor(new Float32Array([1]), [1]) }), /ENOENT/);
      assert.deepEqual(readdirSync(sub), ['model.safetensors']);
      assert.deepEqual(loadSafetensors(file).tensors.get('w')?.toArray(), [2, 3]);
    });
  });

  it('never crashes on random damage: every outcome is a success or a SafetensorsError', () => {
    const valid = tidy(() => encodeSafetensors(sampleTensors(), { format: 'pt' }));
    const headerEnd = 8 + Number(new DataView(valid.buffer).getBigUint64(0, true));
    let state = 12345;
    const random = () => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return state / 2 ** 32;
    };
    const before = memory().liveTensors;
    const outcomes = { ok: 0, rejected: 0 };
    for (let i = 0; i < 200; i++) {
      let bytes = valid.slice();
      const flips = 1 + Math.floor(random() * 4);
      for (let f = 0; f < flips; f++) {
        // Mostly the length field and header, where damage changes meaning; sometimes the data.
        const at = random() < 0.8 ? Math.floor(random() * headerEnd) : headerEnd + Math.floor(random() * (valid.length - headerEnd));
        // Swapping one digit for another keeps the JSON valid but moves shapes and offsets.
        const digit = bytes[at] >= 0x30 && bytes[at] <= 0x39 && random() < 0.5;
        bytes[at] = digit ? 0x30 + Math.floor(random() * 10) : bytes[at] ^ (1 << Math.floor(random() * 8));
      }
      if (random() < 0.1) bytes = bytes.subarray(0, Math.floor(random() * bytes.length));
      try {
        tidy(() => void decodeSafetensors(bytes, `fuzz-${i}`));
        outcomes.ok++;
      } catch (err) {
        assert.ok(err instanceof SafetensorsError, `iteration ${i}: ${String(err)}`);
        assert.ok(err.message.startsWith(`fuzz-${i}: `));
        outcomes.rejected++;
      }
    }
    assert.equal(outcomes.ok + outcomes.rejected, 200);
    assert.ok(outcomes.rejected > 100, `most damage is detected (${JSON.stringify(outcomes)})`);
    assert.equal(memory().liveTensors, before, 'failed decodes free the tensors they made');
  });

  it('keeps the live tensor count flat over save/load inside tidy', () => {
    const file = path.join(dir, 'loop.safetensors');
    const run = () =>
      tidy(() => {
        const original = sampleTensors();
        saveSafetensors(file, original, { step: '1' });
        const { tensors } = loadSafetensors(file);
        assert.equal(tensors.size, Object.keys(original).length);
      });
    run();
    const before = memory().liveTensors;
    for (let i = 0; i < 30; i++) run();
    assert.equal(memory().liveTensors, before);
  });

  it('returns decoded tensors to the enclosing scope when tidy returns them', () => {
    const bytes = tidy(() => encodeSafetensors({ w: tensor(new Float32Array([4]), [1]) }));
    const before = memory().liveTensors;
    const kept = tidy(() => decodeSafetensors(bytes, 'memory').tensors);
    assert.equal(memory().liveTensors, before + 1);
    assert.deepEqual(kept.get('w')?.toArray(), [4]);
    kept.get('w')?.dispose();
    assert.equal(memory().liveTensors, before);
  });
});
