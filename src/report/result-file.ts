// A grid result file ({"format": "kwshield-result", "version": 1, ...}, one per job, written by the grid
// runner) as a Job. Anything that does not match the format is an InputError naming the file and field.
import path from 'node:path';
import { fields, InputError, isObject, num, obj, oneOf, optNum, optObj, optStr, rate, str } from '../data/json-fields.ts';
import type { Job } from './job.ts';
import { optMachine, optMetrics, optStrings } from './validate.ts';

export const resultFormat = 'kwshield-result';

/** True when the parsed JSON says it is a result file (of any version). */
export function isResultJson(value: unknown): boolean {
  return isObject(value) && value.format === resultFormat;
}

export function parseResult(value: unknown, file: string): Job {
  const f = fields(value, file);
  if (f.o.format !== resultFormat) throw new InputError(`${file}: not a kwshield result file (format is ${JSON.stringify(f.o.format)})`);
  if (f.o.version !== 1) throw new InputError(`${file}: result format version ${JSON.stringify(f.o.version)} is not known (this report reads version 1)`);
  const id = str(f, 'id');
  if (!/^[0-9a-f]{16}$/.test(id)) throw new InputError(`${file}: field 'id' must be 16 hex digits, got ${JSON.stringify(id)}`);
  const status = oneOf(f, 'status', ['ok', 'failed'] as const);
  const job = obj(f, 'job');
  const kind = oneOf(job, 'kind', ['clean', 'attack', 'defense'] as const);
  const data = optStr(job, 'data');
  const runs = optObj(f, 'runs');
  const options = optObj(job, 'options');
  const attackOptions = optObj(job, 'attackOptions') ?? (kind === 'attack' ? options : undefined);
  const result: Job = {
    id,
    source: file,
    status,
    error: optStr(f, 'error'),
    kind,
    data,
    dataName: optStr(job, 'dataName') ?? (data ? path.basename(data) : 'unknown data'),
    words: optStr(job, 'words'),
    model: str(job, 'model'),
    frontEnd: optStr(job, 'frontEnd'),
    attack: optStr(job, 'attack'),
    attackSeed: optNum(job, 'attackSeed'),
    poisonRatio: optNum(job, 'poisonRatio'),
    target: optStr(job, 'target'),
    defense: optStr(job, 'defense'),
    recipe: optStr(job, 'recipe'),
    attackOptions: attackOptions?.o,
    options: kind === 'defense' ? options?.o : undefined,
    trainRecipe: optStr(job, 'trainRecipe'),
    cleanRatio: optNum(job, 'cleanRatio'),
    seed: num(job, 'seed'),
    epochs: optNum(job, 'epochs'),
    metrics: optMetrics(f, 'metrics'),
    before: optMetrics(f, 'before'),
    der: f.o.der === undefined || f.o.der === null ? undefined : rate(f, 'der'),
    clean: optMetrics(f, 'clean'),
    runs: runs ? { model: optStr(runs, 'model'), attack: optStr(runs, 'attack'), analysis: optStr(runs, 'analysis') } : {},
    seconds: optNum(f, 'seconds'),
    date: optStr(f, 'date'),
    machine: optMachine(f, 'machine'),
    versions: optStrings(f, 'versions'),
  };
  if (kind === 'attack' && !result.attack) throw new InputError(`${file}: an attack job needs job.attack`);
  if (kind === 'defense' && !result.defense) throw new InputError(`${file}: a defense job needs job.defense`);
  if (status === 'ok' && !result.metrics) throw new InputError(`${file}: a finished ('ok') job needs metrics`);
  return result;
}
