// Grid files (YAML or JSON): data x models x attacks x defenses x clean ratios x seeds, read and checked
// field by field. Every problem names the file, the line and the field, and for names (attacks, models,
// defenses, recipes, options) the valid choices. The result is a normalised Grid that manifest.ts expands.
//
//   name: table3
//   data:
//     - { name: small-scd10, synth: { preset: small, words: scd10, seed: 0 } }   # generated in WORK/data
//     - { name: sc-v1, path: /data/speech_commands_v0.01, words: scd10 }         # a real folder
//   models: [resnet]                 # built-in models, trained and attacked by the grid; or the user's own:
//   #  - { torchscript: my-kws.pt, input: waveform-16k-1s, classes: [yes, no, ...], triggered: trig/, name: my-kws }
//   attacks: [badnets, { attack: flowmur, options: { epochs: 5 }, models: [resnet] }]
//   attackSeeds: [0]
//   poisonRatio: 0.1
//   target: up
//   epochs: 12                       # training epochs (clean and backdoored); default: the recipe's
//   batchSize: 32                    # their batch size; default: the recipe's
//   defenses: [{ defense: ft, recipe: paper }, { defense: gnft, recipe: default, options: { epochs: 20 } }]
//   cleanRatios: [0.05]
//   seeds: [0]
//   threads: 1
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { isMap, isScalar, LineCounter, type Node, parseDocument } from 'yaml';
import { attackNames, getAttack } from '../../attacks/index.ts';
import { SYNTH_PRESETS, type SynthPreset } from '../../data/synth.ts';
import { type WordSetName, wordSet } from '../../data/words.ts';
import { defenseNames, getDefense } from '../../defenses/index.ts';
import { getModelSpec, modelNames } from '../../models/index.ts';
import { OptionError, type OptionValue, resolveOptions } from '../../options/options.ts';
import { attackFrontEnd } from '../attack-run.ts';
import type { DefenseRecipe } from '../defend-run.ts';
import { checkImport, ImportRunError } from '../import-run.ts';
import type { RecipeName } from '../train.ts';

export interface GridData {
  /** the data set's name in results (dataName) */
  name: string;
  words: WordSetName;
  /** a Speech Commands folder (absolute) */
  path?: string;
  /** generated data: kwshield data synth --preset --words --seed */
  synth?: { preset: SynthPreset; seed: number };
}

export interface GridAttack {
  attack: string;
  /** the options given in the grid (typed), not the attack's defaults */
  options: Record<string, OptionValue>;
  /** the front-end asked for; by default the attack's choice per model */
  frontEnd?: string;
  /** the models this attack goes with (default: all of the grid's) */
  models?: string[];
}

/**
 * The user's own model (docs/own-model.md): a TorchScript archive with its input and classes, as `kwshield
 * import` takes them. Its row imports it (no training, no attack: its backdoor, if any, is its maker's) and
 * defends it with each of the grid's defenses; ASR and RA are measured on `triggered` when given.
 */
export interface GridTorchScript {
  /** the model's name in results (default: the file's name without its extension) */
  name: string;
  /** the archive (absolute) and its sha256 when the grid was read (part of the jobs' identity) */
  file: string;
  sha256: string;
  /** waveform-16k-1s or the front-end it was trained on */
  input: string;
  classes: string[];
  /** the user's triggered clips (absolute; Speech Commands layout), for ASR and RA against the grid's target */
  triggered?: string;
}

export interface GridDefense {
  defense: string;
  recipe: DefenseRecipe;
  /** options over the recipe's, as given in the grid (typed) */
  options: Record<string, OptionValue>;
}

export interface Grid {
  name: string;
  description?: string;
  /** the grid file (absolute) */
  file: string;
  data: GridData[];
  /** built-in models (trained and attacked by the grid) */
  models: string[];
  /** the user's own models (imported and defended; attacks do not apply) */
  torchscript: GridTorchScript[];
  attacks: GridAttack[];
  attackSeeds: number[];
  poisonRatio: number;
  target: string;
  /** training epochs of the clean and backdoored models (default: the recipe's) */
  epochs?: number;
  /** their training batch size (default: the recipe's) */
  batchSize?: number;
  /** training recipe (default fast) */
  trainRecipe?: RecipeName;
  defenses: GridDefense[];
  cleanRatios: number[];
  seeds: number[];
  /** KWSHIELD_THREADS of every job's process */
  threads: number;
}

export interface LoadGridOptions {
  /**
   * A real Speech Commands folder to run every data entry on instead of its own source: synthetic
   * entries read it with their words, named `<folder name>-<words>` in results.
   */
  dataRoot?: string;
  env?: NodeJS.ProcessEnv;
}

export class GridError extends Error {}

const TOP_FIELDS = [
  'name',
  'description',
  'data',
  'models',
  'attacks',
  'attackSeeds',
  'poisonRatio',
  'target',
  'epochs',
  'batchSize',
  'trainRecipe',
  'defenses',
  'cleanRatios',
  'seeds',
  'threads',
] as const;

type PathKey = string | number;

/** Levenshtein distance, for "did you mean" on misspelt field names. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

function suggestion(word: string, choices: readonly string[]): string {
  const best = [...choices].sort((x, y) => distance(word.toLowerCase(), x.toLowerCase()) - distance(word.toLowerCase(), y.toLowerCase()))[0];
  return best && distance(word.toLowerCase(), best.toLowerCase()) <= Math.max(2, Math.floor(best.length / 3)) ? ` (did you mean '${best}'?)` : '';
}

const fieldName = (p: readonly PathKey[]) => p.reduce<string>((s, k) => (typeof k === 'number' ? `${s}[${k}]` : s ? `${s}.${k}` : k), '');

/** Reads and checks a grid file. */
export function loadGrid(file: string, o: LoadGridOptions = {}): Grid {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new GridError(`cannot read the grid file ${file}: ${(e as Error).message}`);
  }
  return parseGrid(text, path.resolve(file), o);
}

/** Checks a grid given as text (YAML, or JSON, which YAML reads too); `file` names it in errors. */
export function parseGrid(text: string, file: string, o: LoadGridOptions = {}): Grid {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const shown = path.relative(process.cwd(), file) || file;
  if (doc.errors.length) {
    const e = doc.errors[0];
    const { line } = lineCounter.linePos(e.pos[0]);
    throw new GridError(`${shown}:${line}: ${e.message.split('\n')[0]}`);
  }
  const root = doc.toJS() as unknown;

  /** The line of the node at `p` (or of its nearest existing parent); `key` points at the key of a map entry. */
  const lineOf = (p: readonly PathKey[], key = false): number | null => {
    for (let n = p.length; n >= 0; n--) {
      const sub = p.slice(0, n);
      let node: unknown;
      if (key && n === p.length && n > 0) {
        const parent = sub.length > 1 ? doc.getIn(sub.slice(0, -1), true) : doc.contents;
        if (isMap(parent)) node = parent.items.find((it) => isScalar(it.key) && it.key.value === sub[sub.length - 1])?.key;
      } else node = sub.length ? doc.getIn(sub, true) : doc.contents;
      const range = (node as Node | undefined)?.range;
      if (range) return lineCounter.linePos(range[0]).line;
    }
    return null;
  };
  const fail = (p: readonly PathKey[], message: string, key = false): never => {
    const line = lineOf(p, key);
    throw new GridError(`${shown}${line ? `:${line}` : ''}: ${p.length ? `${fieldName(p)}: ` : ''}${message}`);
  };

  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const checkFields = (v: Record<string, unknown>, p: PathKey[], known: readonly string[]) => {
    for (const k of Object.keys(v))
      if (!known.includes(k)) fail([...p, k], `unknown field '${k}'${suggestion(k, known)}; the fields here are ${known.join(', ')}`, true);
  };
  const need = (v: Record<string, unknown>, k: string, p: PathKey[]) => {
    if (v[k] === undefined || v[k] === null) fail(p, `the field '${k}' is missing`);
    return v[k];
  };
  const str = (v: unknown, p: PathKey[]): string => {
    if (typeof v !== 'string' || v.trim() === '') fail(p, `must be a non-empty string, got ${JSON.stringify(v)}`);
    return (v as string).trim();
  };
  const num = (v: unknown, p: PathKey[], check: (n: number) => boolean, what: string): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) fail(p, `must be ${what}, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const list = <T>(v: unknown, p: PathKey[], item: (x: unknown, p: PathKey[]) => T, o2: { scalarOk?: boolean } = {}): T[] => {
    const items = Array.isArray(v) ? v : o2.scalarOk && v !== undefined && v !== null ? [v] : null;
    if (!items) return fail(p, `must be a list, got ${JSON.stringify(v)}`);
    if (items.length === 0) fail(p, 'must not be empty');
    return items.map((x, i) => item(x, Array.isArray(v) ? [...p, i] : p));
  };
  const oneOf = <T extends string>(v: unknown, p: PathKey[], what: string, choices: readonly T[]): T => {
    const s = str(v, p);
    if (!choices.includes(s as T)) fail(p, `unknown ${what} '${s}'${suggestion(s, choices)}; choose one of ${choices.join(', ')}`);
    return s as T;
  };
  const seedOf = (x: unknown, p: PathKey[]) => num(x, p, (n) => Number.isInteger(n) && n >= 0, 'a non-negative integer');
  const options = (owner: string, specs: Parameters<typeof resolveOptions>[1], given: unknown, p: PathKey[], base: Record<string, unknown> = {}) => {
    if (given === undefined || given === null) return {};
    if (!isObject(given)) fail(p, `must be a map of option: value, got ${JSON.stringify(given)}`);
    const g = given as Record<string, unknown>;
    for (const k of Object.keys(g))
      if (!Object.hasOwn(specs, k))
        fail([...p, k], `${owner} has no option '${k}'${suggestion(k, Object.keys(specs))}; its options are ${Object.keys(specs).join(', ')}`, true);
    let resolved: Record<string, OptionValue>;
    try {
      resolved = resolveOptions(owner, specs, { ...base, ...g });
    } catch (e) {
      if (!(e instanceof OptionError)) throw e;
      const bad = Object.keys(g).find((k) => e.message.includes(`option ${k} `));
      return fail(bad ? [...p, bad] : p, e.message);
    }
    return Object.fromEntries(Object.keys(g).map((k) => [k, resolved[k]]));
  };

  if (!isObject(root)) return fail([], 'a grid file holds a map of fields (name, data, models, attacks, defenses, ...)');
  const g = root as Record<string, unknown>;
  checkFields(g, [], TOP_FIELDS);
  const env = o.env ?? process.env;
  const name = str(need(g, 'name', ['name']), ['name']);
  if (!/^[A-Za-z0-9._-]+$/.test(name)) fail(['name'], `use letters, digits, '.', '_' and '-' only, got '${name}'`);

  // Data.
  const expandEnv = (s: string, p: PathKey[]) =>
    s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => {
      const v = env[(a ?? b) as string];
      if (v === undefined) fail(p, `the environment variable ${a ?? b} is not set`);
      return v as string;
    });
  let data = list(need(g, 'data', ['data']), ['data'], (x, p): GridData => {
    if (!isObject(x)) return fail(p, 'a data entry is { name, path, words } or { name, synth: { preset, words, seed } }');
    checkFields(x, p, ['name', 'path', 'words', 'synth']);
    const dataName = str(need(x, 'name', p), [...p, 'name']);
    if (!/^[A-Za-z0-9._-]+$/.test(dataName)) fail([...p, 'name'], `use letters, digits, '.', '_' and '-' only, got '${dataName}'`);
    const hasPath = x.path !== undefined;
    const hasSynth = x.synth !== undefined;
    if (hasPath === hasSynth) fail(p, "give exactly one of 'path' (a Speech Commands folder) and 'synth' (generated data)");
    let words: WordSetName | undefined = x.words === undefined ? undefined : oneOf(x.words, [...p, 'words'], 'word set', ['scd10', 'scd30'] as const);
    if (hasPath) {
      const raw = expandEnv(str(x.path, [...p, 'path']), [...p, 'path']);
      return { name: dataName, words: words ?? 'scd10', path: path.resolve(path.dirname(file), raw) };
    }
    const s = x.synth;
    if (!isObject(s)) return fail([...p, 'synth'], 'must be { preset, words, seed }');
    checkFields(s, [...p, 'synth'], ['preset', 'words', 'seed']);
    const preset = oneOf(s.preset ?? 'small', [...p, 'synth', 'preset'], 'synth preset', Object.keys(SYNTH_PRESETS) as SynthPreset[]);
    if (s.words !== undefined) {
      const w = oneOf(s.words, [...p, 'synth', 'words'], 'word set', ['scd10', 'scd30'] as const);
      if (words && words !== w) fail([...p, 'synth', 'words'], `says ${w}, the entry's words say ${words}`);
      words = w;
    }
    return { name: dataName, words: words ?? 'scd10', synth: { preset, seed: s.seed === undefined ? 0 : seedOf(s.seed, [...p, 'synth', 'seed']) } };
  });
  if (o.dataRoot) {
    const root = path.resolve(o.dataRoot);
    data = data.map((d) => ({ name: `${path.basename(root)}-${d.words}`, words: d.words, path: root }));
  }
  const seen = new Map<string, GridData>();
  data = data.filter((d, i) => {
    const before = seen.get(d.name);
    if (before && JSON.stringify(before) !== JSON.stringify(d)) fail(['data', i, 'name'], `the name '${d.name}' is used by two different data entries`);
    seen.set(d.name, d);
    return !before;
  });

  // Models (built-in names, or the user's TorchScript archives) and attacks.
  const entries = list(
    need(g, 'models', ['models']),
    ['models'],
    (x, p): string | { entry: Record<string, unknown>; p: PathKey[] } => {
      if (!isObject(x)) return oneOf(x, p, 'model', modelNames());
      checkFields(x, p, ['torchscript', 'input', 'classes', 'name', 'triggered']);
      return { entry: x, p };
    },
    { scalarOk: true },
  );
  const models = entries.filter((e): e is string => typeof e === 'string');
  const builtInAttacks = () =>
    list(
      need(g, 'attacks', ['attacks']),
      ['attacks'],
      (x, p): GridAttack => {
        const entry = typeof x === 'string' ? { attack: x } : x;
        if (!isObject(entry)) return fail(p, 'an attack is a name or { attack, options, frontEnd, models }');
        checkFields(entry, p, ['attack', 'options', 'frontEnd', 'models']);
        const attackName = oneOf(need(entry, 'attack', p), typeof x === 'string' ? p : [...p, 'attack'], 'attack', attackNames());
        const spec = getAttack(attackName);
        const restrict =
          entry.models === undefined
            ? undefined
            : list(entry.models, [...p, 'models'], (m, mp) => {
                const model = oneOf(m, mp, 'model', modelNames());
                if (!models.includes(model)) fail(mp, `'${model}' is not one of the grid's models (${models.join(', ')})`);
                return model;
              });
        const frontEnd = entry.frontEnd === undefined ? undefined : str(entry.frontEnd, [...p, 'frontEnd']);
        for (const model of restrict ?? models) {
          try {
            attackFrontEnd(spec, model, frontEnd);
          } catch (e) {
            fail(
              frontEnd ? [...p, 'frontEnd'] : p,
              `${attackName} on ${model}: ${(e as Error).message}${frontEnd ? '' : "; restrict the attack with 'models: [...]'"}`,
            );
          }
        }
        return {
          attack: attackName,
          options: options(attackName, spec.options, entry.options, [...p, 'options']),
          ...(frontEnd ? { frontEnd } : {}),
          ...(restrict ? { models: restrict } : {}),
        };
      },
      { scalarOk: true },
    );
  if (models.length === 0 && g.attacks !== undefined)
    fail(['attacks'], "attacks apply to the built-in models the grid trains; this grid lists only TorchScript models (leave 'attacks' out)");
  const attacks = models.length ? builtInAttacks() : [];
  const attackSeeds = g.attackSeeds === undefined ? [0] : list(g.attackSeeds, ['attackSeeds'], seedOf, { scalarOk: true });
  const poisonRatio = g.poisonRatio === undefined ? 0.1 : num(g.poisonRatio, ['poisonRatio'], (n) => n > 0 && n < 1, 'a number in (0, 1), e.g. 0.1');
  const target = g.target === undefined ? 'up' : str(g.target, ['target']);
  for (const [i, d] of data.entries()) {
    const words = wordSet(d.words);
    if (!words.includes(target)) fail(['target'], `'${target}' is not a word of ${d.words} (data entry ${i}, ${d.name}); choose one of ${words.join(', ')}`);
  }
  // The user's TorchScript models, checked as `kwshield import` checks them (the archive loaded and probed).
  const torchScriptEntry = (x: Record<string, unknown>, p: PathKey[]): GridTorchScript => {
    const relative = (s: string, field: string) => path.resolve(path.dirname(file), expandEnv(s, [...p, field]));
    const archive = relative(str(need(x, 'torchscript', p), [...p, 'torchscript']), 'torchscript');
    if (!existsSync(archive) || statSync(archive).isDirectory())
      fail([...p, 'torchscript'], `${archive} is not a file; give the path of the TorchScript archive (relative to the grid file), written by torch.jit.save`);
    const input = str(need(x, 'input', p), [...p, 'input']);
    const given = need(x, 'classes', p);
    const classes =
      typeof given === 'string' && !given.includes(',')
        ? relative(given, 'classes')
        : list(given, [...p, 'classes'], (c, cp) => str(c, cp), { scalarOk: true });
    const name = x.name === undefined ? path.basename(archive).replace(/\.[^.]*$/, '') : str(x.name, [...p, 'name']);
    if (!/^[A-Za-z0-9._-]+$/.test(name))
      fail([...p, x.name === undefined ? 'torchscript' : 'name'], `the model's name '${name}' may use letters, digits, '.', '_' and '-' only; give a 'name'`);
    if (modelNames().includes(name)) fail([...p, 'name'], `'${name}' is a built-in model's name; give this TorchScript model another 'name'`);
    let checked: ReturnType<typeof checkImport>;
    try {
      checked = checkImport({ torchscript: archive, input, classes });
    } catch (e) {
      if (!(e instanceof ImportRunError)) throw e;
      // import's messages name its flags; here the fields of the entry
      const field = /^--(input|classes)/.exec(e.message)?.[1] ?? 'torchscript';
      return fail([...p, field], e.message.replace(/--(input|classes|torchscript)\b/g, "'$1'"));
    }
    for (const d of data) {
      const words = wordSet(d.words);
      const missing = checked.classes.filter((c) => !words.includes(c));
      if (missing.length)
        fail(
          [...p, 'classes'],
          `${missing.join(', ')} ${missing.length > 1 ? 'are not words' : 'is not a word'} of ${d.words} (data entry ${d.name}); the classes must be word folders of the grid's data`,
        );
    }
    let triggered: string | undefined;
    if (x.triggered !== undefined) {
      triggered = relative(str(x.triggered, [...p, 'triggered']), 'triggered');
      if (!existsSync(triggered) || !statSync(triggered).isDirectory())
        fail([...p, 'triggered'], `${triggered} is not a folder; give the folder of your triggered clips (DIR/<true word>/<clip>.wav)`);
      if (!checked.classes.includes(target)) fail(['target'], `'${target}' is not one of the classes of ${name} (${checked.classes.join(', ')})`);
    }
    return { name, file: archive, sha256: checked.report.sha256, input: checked.frontEnd.name, classes: checked.classes, ...(triggered ? { triggered } : {}) };
  };
  const torchscript = entries.flatMap((e) => (typeof e === 'string' ? [] : [torchScriptEntry(e.entry, e.p)]));
  for (const [i, t] of torchscript.entries())
    if (torchscript.findIndex((u) => u.name === t.name) !== i) fail(['models'], `two TorchScript models are named '${t.name}'; give each a 'name'`);
  const epochs = g.epochs === undefined ? undefined : num(g.epochs, ['epochs'], (n) => Number.isInteger(n) && n > 0, 'a whole number above 0');
  const batchSize = g.batchSize === undefined ? undefined : num(g.batchSize, ['batchSize'], (n) => Number.isInteger(n) && n > 0, 'a whole number above 0');
  const trainRecipe = g.trainRecipe === undefined ? undefined : oneOf(g.trainRecipe, ['trainRecipe'], 'training recipe', ['fast', 'paper'] as const);
  for (const m of models) getModelSpec(m);

  // Defenses.
  const defenses = list(
    need(g, 'defenses', ['defenses']),
    ['defenses'],
    (x, p): GridDefense => {
      const entry = typeof x === 'string' ? { defense: x } : x;
      if (!isObject(entry)) return fail(p, 'a defense is a name or { defense, recipe, options }');
      checkFields(entry, p, ['defense', 'recipe', 'options']);
      const namePath = typeof x === 'string' ? p : [...p, 'defense'];
      if (entry.defense === 'none')
        fail(namePath, `'none' needs no entry: the No Defense numbers come from the attack jobs; choose one of ${defenseNames().join(', ')}`);
      const defenseName = oneOf(need(entry, 'defense', p), namePath, 'defense', defenseNames());
      const spec = getDefense(defenseName);
      const recipes = Object.keys(spec.recipes) as DefenseRecipe[];
      const recipe = entry.recipe === undefined ? 'default' : oneOf(entry.recipe, [...p, 'recipe'], `recipe of ${defenseName}`, recipes);
      return { defense: defenseName, recipe, options: options(defenseName, spec.options, entry.options, [...p, 'options'], spec.recipes[recipe]) };
    },
    { scalarOk: true },
  );
  const cleanRatios =
    g.cleanRatios === undefined
      ? [0.05]
      : list(g.cleanRatios, ['cleanRatios'], (x, p) => num(x, p, (n) => n > 0 && n <= 1, 'a number in (0, 1], e.g. 0.05'), { scalarOk: true });
  const seeds = g.seeds === undefined ? [0] : list(g.seeds, ['seeds'], seedOf, { scalarOk: true });
  const threads = g.threads === undefined ? 1 : num(g.threads, ['threads'], (n) => Number.isInteger(n) && n > 0, 'a whole number above 0');
  const description = g.description === undefined ? undefined : str(g.description, ['description']);
  return {
    name,
    ...(description ? { description } : {}),
    file,
    data,
    models,
    torchscript,
    attacks,
    attackSeeds,
    poisonRatio,
    target,
    ...(epochs ? { epochs } : {}),
    ...(batchSize ? { batchSize } : {}),
    ...(trainRecipe ? { trainRecipe } : {}),
    defenses,
    cleanRatios,
    seeds,
    threads,
  };
}
