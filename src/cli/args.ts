// What the subcommands share about their arguments: the option parsers (each throws a usage error, exit 2,
// that names the option and shows a valid value) and the look-ups a flag's default needs. Commands import
// this, never each other.
import { type Command, InvalidArgumentError, type OptionValues } from '@commander-js/extra-typings';
import { readManifest } from '../models/checkpoint.ts';
import { UsageError } from './output.ts';

/** Parses a non-negative integer option. */
export function positiveInt(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer, got '${value}'`);
    return n;
  };
}

/** Parses a number > 0 (an integer when `integer`). */
export function greaterThanZero(name: string, opts: { integer?: boolean } = {}): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!(Number.isFinite(n) && n > 0) || (opts.integer && !Number.isInteger(n))) {
      throw new InvalidArgumentError(`${name} must be ${opts.integer ? 'a whole number' : 'a number'} greater than 0, got '${value}'`);
    }
    return n;
  };
}

/**
 * Parses a share: a number in (0, 1) or, with `includeOne`, in (0, 1]. `example` is shown in the error
 * (a poison ratio of 0.1 reads better than a false-alarm rate of 0.1).
 */
export function share(name: string, o: { includeOne?: boolean; example: string }): (value: string) => number {
  return (value) => {
    const n = Number(value);
    const inRange = Number.isFinite(n) && n > 0 && (o.includeOne ? n <= 1 : n < 1);
    if (!inRange) throw new InvalidArgumentError(`${name} must be a number in (0, 1${o.includeOne ? ']' : ')'}, e.g. ${o.example}, got '${value}'`);
    return n;
  };
}

/** --clean-ratio of defend, analyze and scan: the defender's share of the clean training clips. */
export const cleanRatio = share('--clean-ratio', { includeOne: true, example: '0.05' });

/** Parses one of the names a registry knows (attacks, models, defenses); read when parsing, after registration. */
export function oneOf(what: string, names: () => string[]): (value: string) => string {
  return (value) => {
    if (!names().includes(value)) throw new InvalidArgumentError(`unknown ${what} '${value}'; choose one of ${names().join(', ')}`);
    return value;
  };
}

/** A repeatable option's values in the order given (-o a=1 -o b=2). */
export const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Parses a comma-separated list of at least one item; `requirement` completes "FLAG must ..." in the error. */
export function commaList(flag: string, requirement: string): (value: string) => string[] {
  return (value) => {
    const items = value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (items.length === 0) throw new InvalidArgumentError(`${flag} must ${requirement}, got '${value}'`);
    return items;
  };
}

/** --layers of analyze and scan. */
export const layerList = commaList('--layers', 'name at least one layer, e.g. layer3.1.conv2,conv2d');

/** --data, or the data folder the model's run recorded. */
export function dataOf(model: string, data: string | undefined): string {
  if (data) return data;
  const recorded = readManifest(model).provenance?.data;
  if (typeof recorded !== 'string') throw new UsageError(`--data is needed: ${model}/model.json does not say which data the model was trained on`);
  return recorded;
}

/** The flags runFolderOptions adds (named, since a declaration file cannot spell the inferred chain). */
export interface RunFolderFlags {
  out: string;
  resume?: true | undefined;
  force?: true | undefined;
  cache: boolean;
  json?: true | undefined;
}

/**
 * The closing flags of a command that makes one run folder (train, attack, defend): where, resume or
 * replace, the feature cache, JSON output. Added last, so they close the command's help.
 */
export function runFolderOptions<Args extends unknown[], Opts extends OptionValues, GlobalOpts extends OptionValues>(
  command: Command<Args, Opts, GlobalOpts>,
  outHelp: string,
): Command<Args, Opts & RunFolderFlags, GlobalOpts> {
  return command
    .requiredOption('--out <dir>', outHelp)
    .option('--resume', 'continue an interrupted run in --out')
    .option('--force', 'replace a finished run in --out')
    .option('--no-cache', 'do not read or write the feature cache')
    .option('--json', 'print the result as one JSON line') as unknown as Command<Args, Opts & RunFolderFlags, GlobalOpts>;
  // the cast: commander's chained type is these flags over Opts, but TypeScript cannot prove it for a generic Opts
}

/** The runs' cacheDir for --no-cache: null turns the feature cache off, undefined keeps the default folder. */
export const featureCacheDir = (cache: boolean): null | undefined => (cache ? undefined : null);
