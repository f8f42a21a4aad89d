// WAV (RIFF/WAVE) reading and writing over Float32Array. Reading is strict: a file that is truncated or whose
// header lies is rejected with a WavError naming the file, because a silently mis-read clip poisons a dataset
// far more quietly than a crash does.
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

export type WavFormat = 'pcm' | 'float';

export interface Wav {
  sampleRate: number;
  /** Channel count in the file; `samples` is always mono. */
  channels: number;
  /** Mono samples in [-1, 1) for integer formats; multi-channel files are downmixed by averaging. */
  samples: Float32Array;
  bitsPerSample: number;
  format: WavFormat;
}

/** What the header says, without decoding the samples. */
export interface WavInfo {
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
  format: WavFormat;
  /** Samples per channel. */
  frames: number;
  /** Seconds. */
  duration: number;
}

export class WavError extends Error {
  readonly file: string;
  readonly problem: string;
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = 'WavError';
    this.file = file;
    this.problem = problem;
  }
}

export interface EncodeWavOptions {
  /** 8 is unsigned PCM; 32 is integer PCM unless `float`. */
  bitsPerSample?: 8 | 16 | 24 | 32;
  /** 32-bit IEEE float instead of integer PCM (requires bitsPerSample 32). */
  float?: boolean;
  /** Channels in `samples`, which is then interleaved (frame-major). */
  channels?: number;
  /** Write a WAVE_FORMAT_EXTENSIBLE header (some tools emit it for >2 channels or >16 bits). */
  extensible?: boolean;
}

const MIN_SAMPLE_RATE = 1000;
const MAX_SAMPLE_RATE = 384000;
const FORMAT_PCM = 1;
const FORMAT_FLOAT = 3;
const FORMAT_EXTENSIBLE = 0xfffe;
// Bytes 2..15 of the KSDATAFORMAT_SUBTYPE_PCM / _IEEE_FLOAT GUIDs; bytes 0..1 carry the format tag.
const SUBFORMAT_TAIL = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];

export async function readWav(file: string): Promise<Wav> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new WavError(file, `cannot read file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return decodeWav(bytes, file);
}

/** Decodes a whole WAV file held in memory; `name` appears in error messages. */
export function decodeWav(bytes: Uint8Array, name: string): Wav {
  const layout = parseLayout(bytes, bytes.length, name);
  if (layout.dataOffset + layout.dataSize > bytes.length) {
    throw new WavError(name, `truncated: data chunk needs ${layout.dataSize} bytes, file has ${bytes.length - layout.dataOffset}`);
  }
  const { fmt } = layout;
  const frames = layout.dataSize / fmt.blockAlign;
  const samples = decodeSamples(bytes, layout.dataOffset, frames, fmt);
  return { sampleRate: fmt.sampleRate, channels: fmt.channels, samples, bitsPerSample: fmt.bitsPerSample, format: fmt.format };
}

/** Reads and validates only the header chunks (at most the first 64 KiB plus chunk skips). */
export async function probeWav(file: string): Promise<WavInfo> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    throw new WavError(file, `cannot read file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    const { size } = await handle.stat();
    const head = new Uint8Array(Math.min(size, 65536));
    await handle.read(head, 0, head.length, 0);
    // parseLayout only needs the chunk headers; chunk bodies other than fmt are skipped by offset. A file
    // whose headers do not all fit in the window (a huge LIST chunk first) is read whole instead.
    let layout = parseLayout(head, size, file);
    if (layout.incomplete) {
      const whole = new Uint8Array(size);
      await handle.read(whole, 0, size, 0);
      layout = parseLayout(whole, size, file);
    }
    const { fmt } = layout;
    const frames = layout.dataSize / fmt.blockAlign;
    return {
      sampleRate: fmt.sampleRate,
      channels: fmt.channels,
      bitsPerSample: fmt.bitsPerSample,
      format: fmt.format,
      frames,
      duration: frames / fmt.sampleRate,
    };
  } finally {
    await handle.close();
  }
}

export function encodeWav(samples: Float32Array, sampleRate: number, opts: EncodeWavOptions = {}): Uint8Array {
  const bits = opts.bitsPerSample ?? 16;
  const float = opts.float ?? false;
  const channels = opts.channels ?? 1;
  const extensible = opts.extensible ?? false;
  if (![8, 16, 24, 32].includes(bits)) throw new RangeError(`encodeWav: unsupported bitsPerSample ${bits}`);
  if (float && bits !== 32) throw new RangeError('encodeWav: float samples must be 32-bit');
  if (!Number.isInteger(channels) || channels < 1) throw new RangeError(`encodeWav: channels must be a positive integer, got ${channels}`);
  if (samples.length % channels !== 0) throw new RangeError(`encodeWav: ${samples.length} samples is not a whole number of ${channels}-channel frames`);
  if (!Number.isInteger(sampleRate) || sampleRate < MIN_SAMPLE_RATE || sampleRate > MAX_SAMPLE_RATE) {
    throw new RangeError(`encodeWav: sample rate ${sampleRate} outside ${MIN_SAMPLE_RATE}..${MAX_SAMPLE_RATE}`);
  }
  const bytesPerSample = bits / 8;
  const blockAlign = channels * bytesPerSample;
  const dataSize = samples.length * bytesPerSample;
  const fmtSize = extensible ? 40 : 16;
  const pad = dataSize & 1;
  const total = 12 + 8 + fmtSize + 8 + dataSize + pad;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  const tag = float ? FORMAT_FLOAT : FORMAT_PCM;

  writeAscii(out, 0, 'RIFF');
  view.setUint32(4, total - 8, true);
  writeAscii(out, 8, 'WAVE');
  writeAscii(out, 12, 'fmt ');
  view.setUint32(16, fmtSize, true);
  view.setUint16(20, extensible ? FORMAT_EXTENSIBLE : tag, true);
  view.setUint16(22, channels, true);
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * blockAlign, true);
  view.setUint16(32, blockAlign, true);
  view.setUint16(34, bits, true);
  if (extensible) {
    view.setUint16(36, 22, true);
    view.setUint16(38, bits, true);
    view.setUint32(40, 0, true); // channel mask 0: no speaker positions claimed
    view.setUint16(44, tag, true);
    out.set(SUBFORMAT_TAIL, 46);
  }
  const dataHeader = 20 + fmtSize;
  writeAscii(out, dataHeader, 'data');
  view.setUint32(dataHeader + 4, dataSize, true);
  encodeSamples(samples, view, dataHeader + 8, bits, float);
  return out;
}

/** Writes a WAV atomically: a temporary file in the same folder, then a rename. */
export async function writeWav(file: string, samples: Float32Array, sampleRate: number, opts: EncodeWavOptions = {}): Promise<void> {
  await writeFileAtomic(file, encodeWav(samples, sampleRate, opts));
}

async function writeFileAtomic(file: string, bytes: Uint8Array): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

interface FmtChunk {
  format: WavFormat;
  channels: number;
  sampleRate: number;
  blockAlign: number;
  bitsPerSample: number;
}

interface Layout {
  fmt: FmtChunk;
  dataOffset: number;
  dataSize: number;
  /** The chunk walk left `bytes` before reaching the end of the RIFF body. */
  incomplete: boolean;
}

/**
 * Walks the RIFF chunks. `bytes` may be only the start of a file of `fileSize` bytes (probeWav); every size is
 * checked against `fileSize`, and only the fmt chunk's body must lie within `bytes`.
 */
function parseLayout(bytes: Uint8Array, fileSize: number, name: string): Layout {
  if (fileSize < 12) throw new WavError(name, `not a WAV file: ${fileSize} bytes is too short for a RIFF header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const riff = readAscii(bytes, 0, 4);
  if (riff === 'RIFX') throw new WavError(name, 'unsupported format: big-endian RIFX');
  if (riff === 'RF64') throw new WavError(name, 'unsupported format: RF64');
  if (riff !== 'RIFF') throw new WavError(name, 'not a WAV file: missing RIFF signature');
  if (readAscii(bytes, 8, 4) !== 'WAVE') throw new WavError(name, `not a WAV file: RIFF type is '${printable(readAscii(bytes, 8, 4))}', not 'WAVE'`);
  const riffEnd = 8 + view.getUint32(4, true);
  if (riffEnd > fileSize) throw new WavError(name, `truncated or lying header: RIFF size says ${riffEnd} bytes, file has ${fileSize}`);

  let fmt: FmtChunk | undefined;
  let dataOffset = -1;
  let dataSize = 0;
  let pos = 12;
  while (pos + 8 <= riffEnd) {
    // Only probeWav passes a partial window (bytes.length < fileSize); running off it means: reread it whole.
    if (pos + 8 > bytes.length) return { fmt: fmt as FmtChunk, dataOffset, dataSize, incomplete: true };
    const id = readAscii(bytes, pos, 4);
    const size = view.getUint32(pos + 4, true);
    const body = pos + 8;
    if (body + size > riffEnd) {
      throw new WavError(name, `truncated or lying header: '${printable(id)}' chunk at byte ${pos} claims ${size} bytes, only ${riffEnd - body} remain`);
    }
    if (id === 'fmt ' && body + size > bytes.length) return { fmt: fmt as FmtChunk, dataOffset, dataSize, incomplete: true };
    if (id === 'fmt ') {
      if (fmt) throw new WavError(name, 'two fmt chunks');
      fmt = parseFmt(view, body, size, name);
    } else if (id === 'data') {
      if (dataOffset >= 0) throw new WavError(name, 'two data chunks');
      dataOffset = body;
      dataSize = size;
    }
    // Chunks are word-aligned: an odd-sized chunk is followed by one pad byte (a final one may be missing).
    pos = body + size + (size & 1);
  }
  if (!fmt) throw new WavError(name, 'missing fmt chunk');
  if (dataOffset < 0) throw new WavError(name, 'missing data chunk');
  if (dataSize % fmt.blockAlign !== 0) {
    throw new WavError(name, `truncated: data chunk of ${dataSize} bytes is not a whole number of ${fmt.blockAlign}-byte frames`);
  }
  return { fmt, dataOffset, dataSize, incomplete: false };
}

function parseFmt(view: DataView, at: number, size: number, name: string): FmtChunk {
  if (size < 16) throw new WavError(name, `fmt chunk too short (${size} bytes)`);
  let tag = view.getUint16(at, true);
  const channels = view.getUint16(at + 2, true);
  const sampleRate = view.getUint32(at + 4, true);
  const blockAlign = view.getUint16(at + 12, true);
  const bitsPerSample = view.getUint16(at + 14, true);
  if (tag === FORMAT_EXTENSIBLE) {
    if (size < 40) throw new WavError(name, `WAVE_FORMAT_EXTENSIBLE fmt chunk too short (${size} bytes, need 40)`);
    const validBits = view.getUint16(at + 18, true);
    tag = view.getUint16(at + 24, true);
    for (let i = 0; i < SUBFORMAT_TAIL.length; i++) {
      if (view.getUint8(at + 26 + i) !== SUBFORMAT_TAIL[i])
        throw new WavError(name, 'unsupported format: WAVE_FORMAT_EXTENSIBLE with a non-PCM/float sub-format GUID');
    }
    // Fewer valid bits (20 in 24) are still stored left-aligned in the container, so decoding is unchanged.
    if (validBits > bitsPerSample) throw new WavError(name, `valid bits ${validBits} exceed container size ${bitsPerSample}`);
  }
  if (channels === 0) throw new WavError(name, 'zero channels');
  if (sampleRate < MIN_SAMPLE_RATE || sampleRate > MAX_SAMPLE_RATE) {
    throw new WavError(name, `absurd sample rate ${sampleRate} Hz (expected ${MIN_SAMPLE_RATE}..${MAX_SAMPLE_RATE})`);
  }
  let format: WavFormat;
  if (tag === FORMAT_PCM) {
    if (![8, 16, 24, 32].includes(bitsPerSample)) throw new WavError(name, `unsupported format: ${bitsPerSample}-bit integer PCM`);
    format = 'pcm';
  } else if (tag === FORMAT_FLOAT) {
    if (bitsPerSample !== 32 && bitsPerSample !== 64) throw new WavError(name, `unsupported format: ${bitsPerSample}-bit float`);
    format = 'float';
  } else {
    throw new WavError(name, `unsupported format: format tag 0x${tag.toString(16).padStart(4, '0')} (only PCM and IEEE float are read)`);
  }
  const expectedAlign = channels * (bitsPerSample / 8);
  if (blockAlign !== expectedAlign) {
    throw new WavError(name, `inconsistent header: block align ${blockAlign}, expected ${expectedAlign} for ${channels} x ${bitsPerSample}-bit`);
  }
  return { format, channels, sampleRate, blockAlign, bitsPerSample };
}

function decodeSamples(bytes: Uint8Array, offset: number, frames: number, fmt: FmtChunk): Float32Array {
  const { channels, bitsPerSample, format } = fmt;
  const count = frames * channels;
  const interleaved = new Float32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, count * (bitsPerSample / 8));
  if (format === 'float') {
    if (bitsPerSample === 32) for (let i = 0; i < count; i++) interleaved[i] = view.getFloat32(i * 4, true);
    else for (let i = 0; i < count; i++) interleaved[i] = view.getFloat64(i * 8, true);
  } else if (bitsPerSample === 8) {
    for (let i = 0; i < count; i++) interleaved[i] = (view.getUint8(i) - 128) / 128;
  } else if (bitsPerSample === 16) {
    for (let i = 0; i < count; i++) interleaved[i] = view.getInt16(i * 2, true) / 32768;
  } else if (bitsPerSample === 24) {
    for (let i = 0; i < count; i++) {
      const b = i * 3;
      const v = view.getUint8(b) | (view.getUint8(b + 1) << 8) | (view.getInt8(b + 2) << 16);
      interleaved[i] = v / 8388608;
    }
  } else {
    for (let i = 0; i < count; i++) interleaved[i] = view.getInt32(i * 4, true) / 2147483648;
  }
  if (channels === 1) return interleaved;
  const mono = new Float32Array(frames);
  for (let f = 0; f < frames; f++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += interleaved[f * channels + c];
    mono[f] = sum / channels;
  }
  return mono;
}

function encodeSamples(samples: Float32Array, view: DataView, offset: number, bits: number, float: boolean): void {
  const n = samples.length;
  if (float) {
    for (let i = 0; i < n; i++) view.setFloat32(offset + i * 4, samples[i], true);
    return;
  }
  // Scale by 2^(bits-1) so that decode(encode(x)) is exact for x on the integer grid; clip to the range.
  const scale = 2 ** (bits - 1);
  const lo = -scale;
  const hi = scale - 1;
  for (let i = 0; i < n; i++) {
    const x = samples[i];
    let v = Math.round((Number.isNaN(x) ? 0 : x) * scale);
    v = Math.max(lo, Math.min(hi, v));
    if (bits === 8) view.setUint8(offset + i, v + 128);
    else if (bits === 16) view.setInt16(offset + i * 2, v, true);
    else if (bits === 24) {
      const b = offset + i * 3;
      view.setUint8(b, v & 0xff);
      view.setUint8(b + 1, (v >> 8) & 0xff);
      view.setUint8(b + 2, (v >> 16) & 0xff);
    } else view.setInt32(offset + i * 4, v, true);
  }
}

function readAscii(bytes: Uint8Array, at: number, length: number): string {
  let s = '';
  for (let i = at; i < at + length && i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

function writeAscii(bytes: Uint8Array, at: number, text: string): void {
  for (let i = 0; i < text.length; i++) bytes[at + i] = text.charCodeAt(i);
}

function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}
