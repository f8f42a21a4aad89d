// Field checks for JSON files that other programs (and other versions of this one) wrote: each field is
// checked before use, and a bad one is reported by file and field. The report reads results, run folders
// and analyses through these.

/** A file that is not the kind of input it claims to be (or claims nothing); the report skips it. */
export class InputError extends Error {}

export type Json = Record<string, unknown>;

export const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `where` names the file in the error message. */
export interface Fields {
  where: string;
  o: Json;
}

export function fields(o: unknown, where: string): Fields {
  if (!isObject(o)) throw new InputError(`${where}: expected a JSON object`);
  return { where, o };
}

function bad(f: Fields, key: string, want: string): never {
  const got = f.o[key];
  throw new InputError(`${f.where}: field '${key}' must be ${want}, got ${got === undefined ? 'nothing' : JSON.stringify(got)?.slice(0, 60)}`);
}

export function str(f: Fields, key: string): string {
  const v = f.o[key];
  return typeof v === 'string' ? v : bad(f, key, 'a string');
}

export function optStr(f: Fields, key: string): string | undefined {
  return f.o[key] === undefined || f.o[key] === null ? undefined : str(f, key);
}

export function num(f: Fields, key: string): number {
  const v = f.o[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : bad(f, key, 'a number');
}

export function optNum(f: Fields, key: string): number | undefined {
  return f.o[key] === undefined || f.o[key] === null ? undefined : num(f, key);
}

export function obj(f: Fields, key: string): Fields {
  const v = f.o[key];
  return isObject(v) ? { where: `${f.where} ${key}`, o: v } : bad(f, key, 'an object');
}

export function optObj(f: Fields, key: string): Fields | undefined {
  return f.o[key] === undefined || f.o[key] === null ? undefined : obj(f, key);
}

export function arr(f: Fields, key: string): unknown[] {
  const v = f.o[key];
  return Array.isArray(v) ? v : bad(f, key, 'an array');
}

export function oneOf<T extends string>(f: Fields, key: string, values: readonly T[]): T {
  const v = f.o[key];
  return values.includes(v as T) ? (v as T) : bad(f, key, `one of ${values.join(', ')}`);
}

/** A rate in [0, 1]. */
export function rate(f: Fields, key: string): number {
  const v = num(f, key);
  return v >= 0 && v <= 1 ? v : bad(f, key, 'a rate in [0, 1]');
}
