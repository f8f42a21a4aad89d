import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { useTempDir } from '../../test/helpers/temp-dir.ts';
import { decodeWav, encodeWav, probeWav, readWav, WavError, writeWav } from './wav.ts';

/** Values on the 16-bit grid, so every integer format round-trips them exactly. */
function ramp(n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(Math.sin(i * 0.37) * 30000) / 32768;
  return out;
}

function u32(bytes: Uint8Array, at: number, value: number): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setUint32(at, value, true);
  return copy;
}

function u16(bytes: Uint8Array, at: number, value: number): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setUint16(at, value, true);
  return copy;
}

function chunk(id: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + body.length + (body.length & 1));
  for (let i = 0; i < 4; i++) out[i] = id.charCodeAt(i);
  new DataView(out.buffer).setUint32(4, body.length, true);
  out.set(body, 8);
  return out;
}

function riff(...chunks: Uint8Array[]): Uint8Array {
  const size = 4 + chunks.reduce((s, c) => s + c.length, 0);
  const out = new Uint8Array(8 + size);
  out.set([0x52, 0x49, 0x46, 0x46], 0);
  new DataView(out.buffer).setUint32(4, size, true);
  out.set([0x57, 0x41, 0x56, 0x45], 8);
  let at = 12;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** The fmt and data chunks of a 16-bit mono file, split out so tests can reassemble them. */
function parts(samples: Float32Array, rate = 16000): { fmt: Uint8Array; data: Uint8Array } {
  const bytes = encodeWav(samples, rate);
  return { fmt: bytes.subarray(12, 36), data: bytes.subarray(36) };
}

describe('WAV round trips', () => {
  const samples = ramp(1001);
  const cases = [
    { bitsPerSample: 8 as const, tolerance: 1 / 128 },
    { bitsPerSample: 16 as const, tolerance: 0 },
    { bitsPerSample: 24 as const, tolerance: 0 },
    { bitsPerSample: 32 as const, tolerance: 0 },
    { bitsPerSample: 32 as const, float: true, tolerance: 0 },
  ];
  for (const { tolerance, ...opts } of cases) {
    for (const extensible of [false, true]) {
      it(`${opts.bitsPerSample}-bit ${opts.float ? 'float' : 'PCM'}${extensible ? ' (WAVE_FORMAT_EXTENSIBLE)' : ''}`, () => {
        const wav = decodeWav(encodeWav(samples, 22050, { ...opts, extensible }), 'mem.wav');
        assert.equal(wav.sampleRate, 22050);
        assert.equal(wav.channels, 1);
        assert.equal(wav.bitsPerSample, opts.bitsPerSample);
        assert.equal(wav.format, opts.float ? 'float' : 'pcm');
        assert.equal(wav.samples.length, samples.length);
        for (let i = 0; i < samples.length; i++) assert.ok(Math.abs(wav.samples[i] - samples[i]) <= tolerance, `sample ${i}`);
      });
    }
  }

  it('downmixes channels by averaging', () => {
    const frames = 300;
    for (const channels of [2, 3, 6]) {
      const interleaved = new Float32Array(frames * channels);
      for (let f = 0; f < frames; f++) for (let c = 0; c < channels; c++) interleaved[f * channels + c] = ((f % 7) - 3 + c) / 16;
      const wav = decodeWav(encodeWav(interleaved, 16000, { channels, bitsPerSample: 24 }), 'multi.wav');
      assert.equal(wav.channels, channels);
      assert.equal(wav.samples.length, frames);
      for (let f = 0; f < frames; f++) {
        const expected = ((f % 7) - 3) / 16 + (channels - 1) / 32;
        assert.ok(Math.abs(wav.samples[f] - expected) < 1e-6);
      }
    }
  });

  it('clips on integer conversion', () => {
    const wav = decodeWav(encodeWav(new Float32Array([1.5, -2, 1, -1, 0.5]), 16000), 'clip.wav');
    assert.deepEqual([...wav.samples], [32767 / 32768, -1, 32767 / 32768, -1, 0.5]);
  });

  it('skips unknown chunks, honours odd-size padding, and accepts data before fmt', () => {
    const { fmt, data } = parts(ramp(10));
    const list = chunk('LIST', new Uint8Array([1, 2, 3])); // odd: one pad byte follows
    const wav = decodeWav(riff(list, fmt, chunk('junk', new Uint8Array(5)), data), 'chunks.wav');
    assert.equal(wav.samples.length, 10);
    assert.equal(decodeWav(riff(data, fmt), 'order.wav').samples.length, 10);
  });

  it('decodes 8-bit unsigned silence as zero', () => {
    const bytes = encodeWav(new Float32Array(4), 8000, { bitsPerSample: 8 });
    assert.deepEqual([...bytes.subarray(44)], [128, 128, 128, 128]);
    assert.deepEqual([...decodeWav(bytes, 'x').samples], [0, 0, 0, 0]);
  });
});

describe('malformed WAVs are rejected, naming the file', () => {
  const good = encodeWav(ramp(100), 16000);
  const reject = (bytes: Uint8Array, problem: RegExp) => {
    assert.throws(
      () => decodeWav(bytes, 'bad/clip.wav'),
      (err: unknown) => err instanceof WavError && err.file === 'bad/clip.wav' && err.message.startsWith('bad/clip.wav: ') && problem.test(err.message),
    );
  };

  it('truncated file', () => {
    reject(good.subarray(0, good.length - 10), /truncated/);
    reject(good.subarray(0, 30), /truncated/);
    reject(good.subarray(0, 8), /too short/);
  });
  it('chunk sizes that lie', () => {
    reject(u32(good, 40, 1_000_000), /'data' chunk .* claims 1000000 bytes/); // data size beyond file end
    reject(u32(good, 16, 5000), /'fmt ' chunk .* claims/);
    reject(u32(good, 4, good.length + 100), /RIFF size/);
    reject(u32(good, 40, 199), /whole number/); // odd data size for 16-bit frames
  });
  it('zero channels', () => reject(u16(good, 22, 0), /zero channels/));
  it('absurd sample rates', () => {
    reject(u32(good, 24, 100), /absurd sample rate 100/);
    reject(u32(good, 24, 10_000_000), /absurd sample rate/);
  });
  it('missing fmt or data chunk', () => {
    const { fmt, data } = parts(ramp(4));
    reject(riff(data), /missing fmt/);
    reject(riff(fmt), /missing data/);
  });
  it('not RIFF / not WAVE', () => {
    const text = new TextEncoder().encode('this is a text file, not audio at all');
    reject(text, /not a WAV file/);
    const avi = good.slice();
    avi.set([0x41, 0x56, 0x49, 0x20], 8);
    reject(avi, /not 'WAVE'/);
  });
  it('unsupported formats', () => {
    reject(u16(good, 20, 2), /unsupported format: format tag 0x0002/); // ADPCM
    reject(u16(good, 20, 6), /unsupported format/); // A-law
    reject(u16(good, 34, 12), /block align|unsupported/);
    const ext = encodeWav(ramp(4), 16000, { extensible: true });
    ext[44 + 2] = 0x42; // corrupt sub-format GUID
    reject(ext, /sub-format/);
  });
  it('inconsistent block align', () => reject(u16(good, 32, 4), /block align 4, expected 2/));
});

describe('files', () => {
  const dir = useTempDir('kwshield-wav-');

  it('writeWav writes atomically and readWav / probeWav read it back', async () => {
    const file = path.join(dir(), 'a.wav');
    const samples = ramp(16000);
    await writeWav(file, samples, 16000, { bitsPerSample: 16 });
    assert.deepEqual(await readdir(dir()), ['a.wav']); // no temp file left behind
    const wav = await readWav(file);
    assert.deepEqual(wav.samples, samples);
    const info = await probeWav(file);
    assert.deepEqual(info, { sampleRate: 16000, channels: 1, bitsPerSample: 16, format: 'pcm', frames: 16000, duration: 1 });
  });

  it('probeWav walks past a large chunk before the header', async () => {
    const { fmt, data } = parts(ramp(50));
    const file = path.join(dir(), 'big-list.wav');
    await writeFile(file, riff(chunk('LIST', new Uint8Array(100_001)), fmt, data));
    assert.equal((await probeWav(file)).frames, 50);
  });

  it('errors name the file for missing and malformed files', async () => {
    const missing = path.join(dir(), 'missing.wav');
    await assert.rejects(readWav(missing), (err: unknown) => err instanceof WavError && err.message.includes(missing) && /ENOENT/.test(err.message));
    const truncated = path.join(dir(), 'truncated.wav');
    await writeFile(truncated, encodeWav(ramp(100), 16000).subarray(0, 100));
    await assert.rejects(readWav(truncated), new RegExp(`${truncated}: truncated`));
    await assert.rejects(probeWav(truncated), new RegExp(`${truncated}: truncated`));
  });
});
