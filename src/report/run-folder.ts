// A run folder written by `kwshield attack` (src/experiments/attack-run.ts) or `kwshield defend`
// (src/experiments/defend-run.ts) as a Job, plus what only a run folder has: the defense's training
// curve (metrics.json report.epochs) and the attack's clean/triggered examples (examples/).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { arr, type Fields, fields, InputError, isObject, num, obj, oneOf, optNum, optObj, optStr, rate, str } from '../data/json-fields.ts';
import type { Job } from './job.ts';
import { optMetrics } from './validate.ts';

/** One epoch of a defense's training loop (DefenseEpoch of src/defenses/types.ts). */
export interface CurvePoint {
  phase: string;
  epoch: number;
  loss: number;
  holdoutAccuracy: number;
}

export interface DefenseCurve {
  /** the defense run folder */
  run: string;
  job: Job;
  /** clean hold-out accuracy before the first epoch, when the run recorded it */
  holdoutBefore?: number;
  points: CurvePoint[];
}

/** A clean/triggered pair written by `kwshield attack --examples N`. */
export interface ExamplePair {
  /** position in features.safetensors (the NN of NN-word-clean.wav) */
  index: number;
  word: string;
  cleanWav?: string;
  /** absent for feature-domain triggers (BadNets), which cannot be heard */
  triggeredWav?: string;
}

export interface ExampleSet {
  run: string;
  job: Job;
  /** examples/features.safetensors when present: tensors 'clean' and 'triggered' */
  features?: string;
  pairs: ExamplePair[];
}

export interface RunFolder {
  job: Job;
  curve?: DefenseCurve;
  examples?: ExampleSet;
}

export function isRunFolder(dir: string): boolean {
  return existsSync(path.join(dir, 'metrics.json'));
}

/** A run folder still being written (or abandoned): the files a run starts with, but no metrics.json yet. */
export function isUnfinishedRun(dir: string): boolean {
  return !isRunFolder(dir) && ['model.json', 'trigger.json', 'poison-plan.json', 'log.jsonl', 'checkpoint'].some((name) => existsSync(path.join(dir, name)));
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InputError(`${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InputError(`${file}: not valid JSON (${(err as Error).message})`);
  }
}

/** model.json's provenance, or an empty object when the file is missing or unreadable. */
function provenanceOf(run: string): Record<string, unknown> {
  const file = path.join(run, 'model.json');
  if (!existsSync(file)) return {};
  try {
    const manifest = JSON.parse(readFileSync(file, 'utf8'));
    return isObject(manifest) && isObject(manifest.provenance) ? manifest.provenance : {};
  } catch {
    return {};
  }
}

function classesOf(run: string): number | undefined {
  try {
    const manifest = JSON.parse(readFileSync(path.join(run, 'model.json'), 'utf8'));
    return Array.isArray(manifest?.classes) ? manifest.classes.length : undefined;
  } catch {
    return undefined;
  }
}

/** scd10 / scd30 from the class count (the word selections of specs/data.md), else 'N words'. */
function wordsOf(run: string): string | undefined {
  const n = classesOf(run);
  if (n === undefined) return undefined;
  return n === 10 ? 'scd10' : n === 30 ? 'scd30' : `${n} words`;
}

/** The configured training epochs (model.json; metrics.json's `epochs` counts only the epochs of the last session). */
function epochsOf(run: string, metrics: Fields): number | undefined {
  const configured = provenanceOf(run).epochs;
  return typeof configured === 'number' ? configured : optNum(metrics, 'epochs') || undefined;
}

function recipeOf(run: string): string | undefined {
  const recipe = provenanceOf(run).recipe;
  return typeof recipe === 'string' ? recipe : undefined;
}

function totalSeconds(m: Fields): number | undefined {
  const s = m.o.seconds;
  return isObject(s) && typeof s.total === 'number' ? s.total : undefined;
}

function attackJob(run: string, m: Fields): Job {
  const data = optStr(m, 'data');
  return {
    id: path.basename(run),
    source: run,
    status: 'ok',
    kind: 'attack',
    data,
    dataName: data ? path.basename(data) : 'unknown data',
    words: wordsOf(run),
    model: str(m, 'model'),
    frontEnd: optStr(m, 'frontEnd'),
    attack: str(m, 'attack'),
    attackSeed: optNum(m, 'seed'),
    poisonRatio: optNum(m, 'poisonRatio'),
    target: optStr(m, 'target'),
    attackOptions: optObj(m, 'options')?.o,
    trainRecipe: recipeOf(run),
    seed: num(m, 'seed'),
    epochs: epochsOf(run, m),
    metrics: optMetrics(m, 'backdoored'),
    clean: optMetrics(m, 'clean'),
    runs: { model: run, attack: run },
    seconds: totalSeconds(m),
    date: optStr(m, 'created'),
  };
}

/** The parent attack run's metrics, or undefined when it is gone (the defense run still reports its own numbers). */
function parentMetrics(parent: string | undefined): Fields | undefined {
  if (!parent || !existsSync(path.join(parent, 'metrics.json'))) return undefined;
  try {
    const m = fields(readJson(path.join(parent, 'metrics.json')), path.join(parent, 'metrics.json'));
    return m.o.kind === 'attack' ? m : undefined;
  } catch {
    return undefined;
  }
}

function defenseJob(run: string, m: Fields): Job {
  const parentRun = optStr(m, 'parent');
  const parent = parentMetrics(parentRun);
  const data = parent && optStr(parent, 'data');
  return {
    id: path.basename(run),
    source: run,
    status: 'ok',
    kind: 'defense',
    data,
    dataName: data ? path.basename(data) : 'unknown data',
    words: wordsOf(run),
    model: str(m, 'model'),
    frontEnd: optStr(m, 'frontEnd'),
    attack: optStr(m, 'attack') ?? (parent && optStr(parent, 'attack')),
    attackSeed: parent && optNum(parent, 'seed'),
    poisonRatio: parent && optNum(parent, 'poisonRatio'),
    target: parent && optStr(parent, 'target'),
    attackOptions: parent && optObj(parent, 'options')?.o,
    trainRecipe: parentRun ? recipeOf(parentRun) : undefined,
    defense: str(m, 'defense'),
    recipe: optStr(m, 'recipe'),
    cleanRatio: optNum(m, 'cleanRatio'),
    seed: num(m, 'seed'),
    epochs: parent && parentRun ? epochsOf(parentRun, parent) : undefined,
    metrics: optMetrics(m, 'after'),
    before: optMetrics(m, 'before'),
    der: m.o.der === undefined ? undefined : rate(m, 'der'),
    runs: { model: run, attack: parentRun },
    seconds: totalSeconds(m),
    date: optStr(m, 'created'),
  };
}

function curveOf(run: string, job: Job, m: Fields): DefenseCurve | undefined {
  const report = optObj(m, 'report');
  if (!report || !Array.isArray(report.o.epochs)) return undefined;
  const points = arr(report, 'epochs').map((e, i) => {
    const p = fields(e, `${report.where} epochs[${i}]`);
    return { phase: optStr(p, 'phase') ?? job.defense ?? '', epoch: num(p, 'epoch'), loss: num(p, 'loss'), holdoutAccuracy: rate(p, 'holdoutAccuracy') };
  });
  return { run, job, holdoutBefore: optNum(report, 'holdoutBefore'), points };
}

const exampleName = /^(\d+)-(.+)-(clean|triggered)\.wav$/;

/** The examples/ folder of an attack run: NN-word-clean.wav, NN-word-triggered.wav, features.safetensors. */
export function examplesOf(run: string, job: Job): ExampleSet | undefined {
  const dir = path.join(run, 'examples');
  if (!existsSync(dir)) return undefined;
  const pairs = new Map<number, ExamplePair>();
  for (const name of readdirSync(dir).sort()) {
    const match = exampleName.exec(name);
    if (!match) continue;
    const index = Number(match[1]);
    const pair = pairs.get(index) ?? { index, word: match[2] };
    if (match[3] === 'clean') pair.cleanWav = path.join(dir, name);
    else pair.triggeredWav = path.join(dir, name);
    pairs.set(index, pair);
  }
  const features = path.join(dir, 'features.safetensors');
  const set: ExampleSet = { run, job, features: existsSync(features) ? features : undefined, pairs: [...pairs.values()].sort((a, b) => a.index - b.index) };
  return set.pairs.length || set.features ? set : undefined;
}

/** Reads an attack or defense run folder; throws InputError naming the file when it is neither. */
export function readRunFolder(dir: string): RunFolder {
  const run = path.resolve(dir);
  const file = path.join(run, 'metrics.json');
  const m = fields(readJson(file), file);
  const kind = oneOf(m, 'kind', ['attack', 'defense'] as const);
  if (kind === 'attack') {
    const job = attackJob(run, m);
    return { job, examples: examplesOf(run, job) };
  }
  obj(m, 'report');
  const job = defenseJob(run, m);
  return { job, curve: curveOf(run, job, m) };
}
