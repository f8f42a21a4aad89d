// Typed, validated options of attacks and defenses. Each declares its options with paper defaults (a spec
// object `as const`); a user's `key=value` strings are parsed and checked against the declaration, and a
// bad value gets an error that names the option, its owner and the valid range. The declaration's type
// says each resolved option's type too (OptionsOf), so code reads `o.lr` as a number without a cast.

export type OptionValue = number | string | boolean;

export interface OptionSpec {
  type: 'number' | 'integer' | 'boolean' | 'enum' | 'string';
  default: OptionValue;
  /** inclusive bounds for numbers */
  min?: number;
  max?: number;
  /** exclusive lower bound (e.g. a size that must be > 0) */
  above?: number;
  /** allowed values of an enum */
  values?: readonly (string | number)[];
  help: string;
}

export type OptionSpecs = Record<string, OptionSpec>;

/** The value an option spec declares: a number (number, integer), a boolean, a string, or one of an enum's values. */
export type OptionType<S extends OptionSpec> = S['type'] extends 'boolean'
  ? boolean
  : S['type'] extends 'string'
    ? string
    : S['type'] extends 'enum'
      ? S['values'] extends readonly (infer V)[]
        ? V
        : OptionValue
      : S['type'] extends 'number' | 'integer'
        ? number
        : OptionValue;

/** Resolved options of a declaration: each declared option with its type; any name to any value for an undeclared shape. */
export type OptionsOf<S extends OptionSpecs> = string extends keyof S ? Record<string, OptionValue> : { -readonly [K in keyof S]: OptionType<S[K]> };

export class OptionError extends Error {}

function describeRange(spec: OptionSpec): string {
  if (spec.type === 'enum') return `one of ${spec.values?.join(', ')}`;
  if (spec.type === 'boolean') return 'true or false';
  const kind = spec.type === 'integer' ? 'an integer' : 'a number';
  const parts = [
    spec.above !== undefined ? `> ${spec.above}` : null,
    spec.min !== undefined ? `>= ${spec.min}` : null,
    spec.max !== undefined ? `<= ${spec.max}` : null,
  ].filter(Boolean);
  return parts.length ? `${kind} ${parts.join(' and ')}` : kind;
}

function checkValue(owner: string, name: string, spec: OptionSpec, value: unknown): OptionValue {
  const bad = () => new OptionError(`${owner}: option ${name} must be ${describeRange(spec)}, got ${JSON.stringify(value)}`);
  switch (spec.type) {
    case 'boolean': {
      if (typeof value === 'boolean') return value;
      if (value === 'true') return true;
      if (value === 'false') return false;
      throw bad();
    }
    case 'string':
      if (typeof value !== 'string' || value.length === 0) throw bad();
      return value;
    case 'enum': {
      const values = spec.values ?? [];
      const match = values.find((v) => v === value || String(v) === String(value));
      if (match === undefined) throw bad();
      return match;
    }
    default: {
      const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
      if (!Number.isFinite(n)) throw bad();
      if (spec.type === 'integer' && !Number.isInteger(n)) throw bad();
      if (spec.min !== undefined && n < spec.min) throw bad();
      if (spec.max !== undefined && n > spec.max) throw bad();
      if (spec.above !== undefined && !(n > spec.above)) throw bad();
      return n;
    }
  }
}

/** The declared defaults overridden by `given` (strings from the CLI or typed values), every one checked. */
export function resolveOptions<S extends OptionSpecs>(owner: string, specs: S, given: Record<string, unknown> = {}): OptionsOf<S> {
  const unknown = Object.keys(given).filter((k) => !Object.hasOwn(specs, k));
  if (unknown.length) {
    throw new OptionError(`${owner}: unknown option ${unknown.join(', ')}; its options are ${Object.keys(specs).join(', ') || '(none)'}`);
  }
  const out: Record<string, OptionValue> = {};
  for (const [name, spec] of Object.entries(specs)) out[name] = checkValue(owner, name, spec, Object.hasOwn(given, name) ? given[name] : spec.default);
  // checkValue has checked every value against its spec, which is what OptionsOf<S> says.
  return out as OptionsOf<S>;
}

/** Parses `key=value` pairs (as given on the command line) into an object of strings. */
export function parseOptionPairs(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new OptionError(`option '${pair}' is not key=value (e.g. size=5)`);
    out[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
  }
  return out;
}
