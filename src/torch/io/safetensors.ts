// Reads and writes the huggingface .safetensors format: an 8-byte little-endian header length N, N bytes
// of JSON header ({name: {dtype, shape, data_offsets}, "__metadata__"?: {string: string}}), then the raw
// little-endian data buffer. Files come from outside (downloads, other tools, half-written checkpoints),
// so decoding validates every field before any tensor is made and reports each problem with the file,
// the fault and a fix; no input may crash the process. The rules follow the reference implementation
// (github.com/huggingface/safetensors): contiguous ranges, no holes, no trailing bytes, 100 MB header cap.
import { closeSync, fstatSync, openSync, readFileSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bytesPerElement, type DType, dtypeCode } from '../dtype.ts';
import { native } from '../native.ts';
import { Tensor } from '../tensor.ts';

/** A file (or byte buffer) that is not a valid .safetensors, or tensors that cannot be written as one. */
export class SafetensorsError extends Error {
  /** the file path or buffer label the error is about */
  readonly source: string;
  constructor(source: string, problem: string, fix: string) {
    super(`${source}: ${problem}. ${fix}`);
    this.name = 'SafetensorsError';
    this.source = source;
  }
}

/** One tensor as the header describes it; offsets are relative to the start of the data buffer. */
export interface SafetensorsEntry {
  name: string;
  dtype: DType;
  shape: number[];
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  /** in data-offset order (the order of the bytes in the file) */
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
  /** bytes of header JSON (padding included), and of the data buffer that follows it */
  headerBytes: number;
  dataBytes: number;
}

export interface LoadOptions {
  /** where the tensors are created: 'cpu' (default) or e.g. 'cuda:0' */
  device?: string;
}

export type TensorDict = Map<string, Tensor> | Record<string, Tensor>;

// The reference implementation refuses larger headers (MAX_HEADER_SIZE) so a lying length cannot
// make the reader allocate gigabytes.
const maxHeaderBytes = 100_000_000;
const metadataKey = '__metadata__';

const formatToDtype: Record<string, DType> = {
  F64: 'float64',
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};
const dtypeToFormat = new Map<DType, string>(Object.entries(formatToDtype).map(([format, dtype]) => [dtype, format]));

const corruptFix = 'The file is damaged or was not written by a safetensors writer; write it again from the source model';

/** The .safetensors bytes of the tensors (copied to CPU, contiguous), in name order, with optional metadata. */
export function encodeSafetensors(tensors: TensorDict, metadata?: Record<string, string>, source = 'safetensors buffer'): Uint8Array {
  const named = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  // Byte order of the UTF-8 names, as the reference writer (Rust string order) sorts them.
  named.sort(([a], [b]) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));

  const parts: string[] = [];
  if (metadata !== undefined) {
    const fields: string[] = [];
    for (const key of Object.keys(metadata).sort()) {
      const value = metadata[key];
      if (typeof value !== 'string') {
        throw new SafetensorsError(
          source,
          `metadata '${key}' is a ${typeof value}, but safetensors metadata values must be strings`,
          'Convert it with String() or JSON.stringify() first',
        );
      }
      fields.push(`${JSON.stringify(key)}:${JSON.stringify(value)}`);
    }
    parts.push(`${JSON.stringify(metadataKey)}:{${fields.join(',')}}`);
  }

  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of named) {
    if (name === '' || name === metadataKey) {
      throw new SafetensorsError(source, `a tensor cannot be named '${name}'`, `Rename it (the empty name and '${metadataKey}' are reserved)`);
    }
    if (t.isDisposed) {
      throw new SafetensorsError(
        source,
        `tensor '${name}' was disposed before it was saved`,
        'Save it before dispose() or the end of its tidy() scope, or keep() it',
      );
    }
    const dtype = t.dtype;
    const format = dtypeToFormat.get(dtype);
    if (!format) {
      throw new SafetensorsError(
        source,
        `tensor '${name}' has dtype ${dtype}, which safetensors cannot store`,
        `Convert it first (complex: view_as_real); storable: ${[...dtypeToFormat.keys()].join(', ')}`,
      );
    }
    const shape = t.shape;
    const bytes = t.bytes(); // a contiguous CPU copy; libtorch's CPU layout is little-endian like the format
    if (bytes.length !== t.numel * bytesPerElement(dtype)) {
      throw new SafetensorsError(
        source,
        `tensor '${name}' gave ${bytes.length} bytes for shape [${shape.join(', ')}] ${dtype}`,
        'This is an engine bug; please report it',
      );
    }
    parts.push(`${JSON.stringify(name)}:{"dtype":"${format}","shape":[${shape.join(',')}],"data_offsets":[${offset},${offset + bytes.length}]}`);
    chunks.push(bytes);
    offset += bytes.length;
  }

  // Written by hand rather than with JSON.stringify(object): JS objects list integer-like keys first,
  // which would break name order.
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  // Spaces pad the header so the data starts 8-byte aligned, as the reference writer does.
  const headerBytes = json.length + ((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + headerBytes + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerBytes);
  let at = 8 + headerBytes;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/**
 * Parses and validates .safetensors bytes and makes one engine tensor per entry (tracked by the current
 * tidy() scope like any other). `source` names the file in error messages. Throws SafetensorsError.
 */
export function decodeSafetensors(bytes: Uint8Array, source: string, opts?: LoadOptions): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const headerBytes = readHeaderLength(bytes.subarray(0, Math.min(8, bytes.length)), bytes.length, source);
  const header = parseHeader(bytes.subarray(8, 8 + headerBytes), bytes.length - 8 - headerBytes, source);
  const data = bytes.subarray(8 + headerBytes);

  const tensors = new Map<string, Tensor>();
  try {
    for (const entry of header.entries) {
      const [begin, end] = entry.dataOffsets;
      const raw = data.subarray(begin, end);
      if (entry.dtype === 'bool') {
        // libtorch assumes a bool byte is 0 or 1; anything else is undefined behaviour in its kernels.
        const bad = raw.findIndex((b) => b > 1);
        if (bad >= 0) {
          throw new SafetensorsError(source, `BOOL tensor '${entry.name}' holds byte ${raw[bad]} at element ${bad}; booleans must be 0 or 1`, corruptFix);
        }
      }
      tensors.set(entry.name, makeTensor(raw, entry, source, opts?.device));
    }
  } catch (err) {
    for (const t of tensors.values()) t.dispose();
    throw err;
  }
  return { tensors, metadata: header.metadata };
}

/** Writes the tensors to `file` atomically: a temporary file beside it, then a rename. */
export function saveSafetensors(file: string, tensors: TensorDict, metadata?: Record<string, string>): void {
  const bytes = encodeSafetensors(tensors, metadata, file);
  // Same directory, so the rename stays on one filesystem and is atomic; readers never see half a file.
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  try {
    writeFileSync(temp, bytes, { flag: 'wx' });
    renameSync(temp, file);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}

/** Reads, validates and decodes a .safetensors file (see decodeSafetensors). */
export function loadSafetensors(file: string, opts?: LoadOptions): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  return decodeSafetensors(readFileSync(file), file, opts);
}

/** Reads and validates only the header of a .safetensors file (names, dtypes, shapes), not the data. */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  const fd = openSync(file, 'r');
  try {
    const fileBytes = fstatSync(fd).size;
    const prefix = readExactly(fd, 0, Math.min(8, fileBytes));
    const headerBytes = readHeaderLength(prefix, fileBytes, file);
    return parseHeader(readExactly(fd, 8, headerBytes), fileBytes - 8 - headerBytes, file);
  } finally {
    closeSync(fd);
  }
}

function readExactly(fd: number, position: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return out.subarray(0, done);
}

/** Checks the 8-byte prefix against the file's size and returns the header length N. */
function readHeaderLength(prefix: Uint8Array, fileBytes: number, source: string): number {
  if (fileBytes < 8 || prefix.length < 8) {
    throw new SafetensorsError(
      source,
      `the file is ${fileBytes} bytes long, shorter than the 8-byte header length that starts every .safetensors file`,
      'The file is truncated or empty; write or download it again',
    );
  }
  const length = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(maxHeaderBytes)) {
    throw new SafetensorsError(
      source,
      `the header length field says ${length} bytes, over the ${maxHeaderBytes}-byte limit`,
      `This is not a .safetensors file, or its first 8 bytes are damaged. ${corruptFix}`,
    );
  }
  const n = Number(length);
  if (8 + n > fileBytes) {
    throw new SafetensorsError(
      source,
      `the header length field says ${n} bytes but only ${fileBytes - 8} bytes follow it`,
      'The file is truncated or its first 8 bytes are damaged; write or download it again',
    );
  }
  return n;
}

/** Parses the header JSON and validates every entry against a data buffer of `dataBytes` bytes. */
function parseHeader(json: Uint8Array, dataBytes: number, source: string): SafetensorsHeader {
  let parsed: unknown;
  try {
    // fatal: invalid UTF-8 is an error (as in the reference reader), not silently replaced.
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (err) {
    throw new SafetensorsError(source, `the header is not valid UTF-8 JSON (${err instanceof Error ? err.message : String(err)})`, corruptFix);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new SafetensorsError(source, `the header is JSON ${describe(parsed)}, not an object of tensors`, corruptFix);
  }

  let metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, value] of Object.entries(parsed)) {
    if (name === metadataKey) {
      metadata = parseMetadata(value, source);
      continue;
    }
    if (name === '') throw new SafetensorsError(source, 'a tensor has the empty name', corruptFix);
    entries.push(parseEntry(name, value, dataBytes, source));
  }

  // Ranges must tile the data buffer exactly: no overlap (two tensors aliasing bytes), no holes (the
  // reference reader rejects them too), nothing after the last tensor. Duplicate JSON keys, which
  // JSON.parse silently collapses, usually surface here as a hole.
  entries.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let covered = 0;
  let previous: SafetensorsEntry | undefined;
  for (const entry of entries) {
    const [begin, end] = entry.dataOffsets;
    if (begin < covered) {
      throw new SafetensorsError(
        source,
        `tensor '${entry.name}' (bytes ${begin}..${end}) overlaps tensor '${previous?.name}' (bytes ${previous?.dataOffsets.join('..')})`,
        corruptFix,
      );
    }
    if (begin > covered) {
      throw new SafetensorsError(source, `bytes ${covered}..${begin} of the data buffer belong to no tensor (a hole before '${entry.name}')`, corruptFix);
    }
    covered = end;
    previous = entry;
  }
  if (covered !== dataBytes) {
    throw new SafetensorsError(
      source,
      `the tensors cover ${covered} bytes but the data buffer holds ${dataBytes} (${dataBytes - covered} bytes after the last tensor belong to none)`,
      corruptFix,
    );
  }
  return { entries, metadata, headerBytes: json.length, dataBytes };
}

function parseMetadata(value: unknown, source: string): Record<string, string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new SafetensorsError(source, `'${metadataKey}' is ${describe(value)}, not an object of strings`, corruptFix);
  }
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new SafetensorsError(source, `metadata '${key}' is ${describe(v)}; metadata values must be strings`, corruptFix);
  }
  // fromEntries defines own properties, so a key such as "__proto__" stays data.
  return Object.fromEntries(Object.entries(value as Record<string, string>));
}

function parseEntry(name: string, value: unknown, dataBytes: number, source: string): SafetensorsEntry {
  const where = `tensor '${name}'`;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new SafetensorsError(source, `${where} is described by ${describe(value)}, not an object with dtype, shape and data_offsets`, corruptFix);
  }
  const field = (key: string) => (Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : undefined);

  const format = field('dtype');
  const dtype = typeof format === 'string' && Object.hasOwn(formatToDtype, format) ? formatToDtype[format] : undefined;
  if (!dtype) {
    throw new SafetensorsError(
      source,
      `${where} has dtype ${describe(format)}, which kwshield does not read`,
      `Supported: ${Object.keys(formatToDtype).join(', ')}; convert the tensor to one of them where the file is written`,
    );
  }

  const shape = field('shape');
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new SafetensorsError(source, `${where} has shape ${describe(shape)}; a shape is an array of non-negative integers`, corruptFix);
  }
  let numel = 1;
  for (const d of shape as number[]) numel *= d;
  const size = numel * bytesPerElement(dtype);
  if (!Number.isSafeInteger(size)) {
    throw new SafetensorsError(source, `${where} has shape [${shape.join(', ')}], too many elements to address`, corruptFix);
  }

  const offsets = field('data_offsets');
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    throw new SafetensorsError(source, `${where} has data_offsets ${describe(offsets)}; they must be two non-negative integers [begin, end]`, corruptFix);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw new SafetensorsError(source, `${where} has data_offsets [${begin}, ${end}] with begin after end`, corruptFix);
  if (end > dataBytes) {
    throw new SafetensorsError(
      source,
      `${where} ends at byte ${end} of the data buffer, which holds only ${dataBytes} bytes`,
      `The file is truncated or damaged; write or download it again`,
    );
  }
  if (end - begin !== size) {
    throw new SafetensorsError(source, `${where} has ${end - begin} bytes of data, but shape [${shape.join(', ')}] of ${format} needs ${size}`, corruptFix);
  }
  return { name, dtype, shape: shape as number[], dataOffsets: [begin, end] };
}

function makeTensor(raw: Uint8Array, entry: SafetensorsEntry, source: string, device: string | undefined): Tensor {
  try {
    // raw = true: the bytes are taken as entry.dtype as they are, whatever the typed array's own type.
    return new Tensor(native.fromTypedArray(raw, entry.shape, dtypeCode(entry.dtype), device, true));
  } catch (err) {
    throw new SafetensorsError(
      source,
      `tensor '${entry.name}' (shape [${entry.shape.join(', ')}] ${entry.dtype}) could not be created: ${err instanceof Error ? err.message : String(err)}`,
      device ? `Check that device '${device}' exists and has memory for it` : 'Check that there is memory for it',
    );
  }
}

/** A short description of a JSON value for error messages. */
function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return clip(JSON.stringify(value));
  if (typeof value === 'object') return 'an object';
  return clip(JSON.stringify(value));
}

function clip(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
