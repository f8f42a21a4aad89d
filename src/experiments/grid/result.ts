// The result of one grid job: RESULTS/<id>.json, written atomically (temp + rename) so a folder shared by
// several machines only ever holds whole files. The format is read by other tools (the HTML report,
// `grid collect`): change it only with its version.
//
// { "format": "kwshield-result", "version": 1, "id": "<16 hex>", "status": "ok" | "failed", "error"?: string,
//   "job": { "kind", "data", "dataName", "words", "model", "frontEnd", "attack"?, "attackSeed"?, "poisonRatio"?,
//            "target"?, "defense"?, "recipe"?, "options"?, "cleanRatio"?, "seed", "epochs"?,
//            "synth"?, "attackOptions"?, "trainRecipe"?, "torchscript"?: { "sha256", "input", "classes" } },
//   "metrics"?: { "ca", "asr", "ra" }, "before"?: { ... }, "der"?: number, "clean"?: { ... },
//   "runs": { "model"?, "attack"?, "analysis"? }, "seconds", "date", "machine": { ... }, "versions": { "kwshield" } }
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeJsonAtomic } from '../../data/atomic.ts';
import { type AttackConfig, type DefenseConfig, jobId } from './manifest.ts';

export interface Metrics3 {
  ca: number;
  /** null: not measured (a TorchScript model's row without triggered clips) */
  asr: number | null;
  ra: number | null;
}

/** A job as its result names it: the config with the data folder it ran on. */
export type ResultJob = (Omit<AttackConfig, 'kind'> & { kind: 'attack' }) | DefenseConfig;

export interface MachineInfo {
  hostname: string;
  cpus: number;
  cpuModel: string;
  memGb: number;
  node: string;
  platform: string;
}

export interface JobResult {
  format: 'kwshield-result';
  version: 1;
  id: string;
  status: 'ok' | 'failed';
  error?: string;
  job: ResultJob & { data: string };
  /** the job's own model: the defended one for defense jobs, the backdoored one for attack jobs */
  metrics?: Metrics3;
  /** defense jobs: the backdoored model before the defense */
  before?: Metrics3;
  der?: number;
  /** attack jobs: the clean model of the same configuration (its ASR is the false-trigger rate) */
  clean?: Metrics3;
  runs: { model?: string; attack?: string; analysis?: string };
  seconds: number;
  date: string;
  machine: MachineInfo;
  versions: { kwshield: string };
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    hostname: os.hostname(),
    cpus: os.availableParallelism?.() ?? cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memGb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

let version: string | undefined;
export function kwshieldVersion(): string {
  version ??= (JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { version: string }).version;
  return version;
}

export const resultFile = (results: string, id: string) => path.join(results, `${id}.json`);

/** The job of a result in the documented key order (the format's, then the additions). */
export function resultJob(config: AttackConfig | DefenseConfig, data: string): JobResult['job'] {
  const c = config as Omit<AttackConfig, 'kind'> & Partial<Omit<DefenseConfig, 'kind'>>;
  const ordered = {
    kind: config.kind,
    data: path.resolve(data),
    dataName: c.dataName,
    words: c.words,
    model: c.model,
    frontEnd: c.frontEnd,
    attack: c.attack,
    attackSeed: c.attackSeed,
    poisonRatio: c.poisonRatio,
    target: c.target,
    defense: c.defense,
    recipe: c.recipe,
    options: c.options,
    cleanRatio: c.cleanRatio,
    seed: c.seed,
    epochs: c.epochs,
    batchSize: c.batchSize,
    synth: c.synth,
    attackOptions: c.attackOptions,
    trainRecipe: c.trainRecipe,
    torchscript: c.torchscript,
  };
  return Object.fromEntries(Object.entries(ordered).filter(([, v]) => v !== undefined)) as JobResult['job'];
}

/** The config a result's id hashes: its job without the data folder. */
export function configOfResult(job: JobResult['job']): AttackConfig | DefenseConfig {
  const { data: _data, ...config } = job;
  return config as AttackConfig | DefenseConfig;
}

const isMetrics = (m: unknown) =>
  typeof m === 'object' &&
  m !== null &&
  ['ca', 'asr', 'ra'].every((k) => typeof (m as Record<string, unknown>)[k] === 'number' || (m as Record<string, unknown>)[k] === null);

/** What is wrong with a parsed result file, or null when it is a result of this format. */
export function resultProblem(r: unknown, file?: string): string | null {
  if (typeof r !== 'object' || r === null) return 'not a JSON object';
  const x = r as Record<string, unknown>;
  if (x.format !== 'kwshield-result') return `format is ${JSON.stringify(x.format)}, not "kwshield-result"`;
  if (x.version !== 1) return `version ${JSON.stringify(x.version)} is not 1`;
  if (typeof x.id !== 'string' || !/^[0-9a-f]{16}$/.test(x.id)) return 'id is not 16 hex digits';
  if (file && path.basename(file) !== `${x.id}.json`) return `the file name does not match its id ${x.id}`;
  if (x.status !== 'ok' && x.status !== 'failed') return `status ${JSON.stringify(x.status)} is neither "ok" nor "failed"`;
  const job = x.job as Record<string, unknown> | undefined;
  if (typeof job !== 'object' || job === null) return 'no job';
  if (!['attack', 'defense', 'clean'].includes(job.kind as string)) return `job.kind ${JSON.stringify(job.kind)} is not attack, defense or clean`;
  for (const k of ['data', 'dataName', 'model']) if (typeof job[k] !== 'string') return `job.${k} is missing`;
  if (typeof job.seed !== 'number') return 'job.seed is missing';
  if (x.status === 'ok' && !isMetrics(x.metrics)) return 'an ok result without metrics { ca, asr, ra }';
  for (const k of ['before', 'clean']) if (x[k] !== undefined && !isMetrics(x[k])) return `${k} is not { ca, asr, ra }`;
  if (typeof x.seconds !== 'number') return 'seconds is missing';
  if (typeof x.date !== 'string') return 'date is missing';
  return null;
}

export type ReadResult = { ok: true; result: JobResult; text: string } | { ok: false; problem: string };

export function readResult(file: string): ReadResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return { ok: false, problem: (e as Error).message };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return { ok: false, problem: `not valid JSON (${(e as Error).message})` };
  }
  const problem = resultProblem(parsed, file);
  return problem ? { ok: false, problem } : { ok: true, result: parsed as JobResult, text };
}

/** The finished (status ok) result of a job, or null. */
export function okResult(results: string, id: string): JobResult | null {
  const file = resultFile(results, id);
  if (!existsSync(file)) return null;
  const r = readResult(file);
  return r.ok && r.result.status === 'ok' ? r.result : null;
}

export function writeResult(results: string, r: JobResult): string {
  const file = resultFile(results, r.id);
  writeJsonAtomic(file, r);
  return file;
}

/** A result with the fields every result carries. */
export function makeResult(
  id: string,
  job: JobResult['job'],
  fields: Pick<JobResult, 'status' | 'seconds' | 'runs'> & Partial<Pick<JobResult, 'error' | 'metrics' | 'before' | 'der' | 'clean'>>,
): JobResult {
  const expected = jobId(configOfResult(job));
  if (expected !== id) throw new Error(`result ${id}: its job hashes to ${expected}`);
  const pick = (m?: Metrics3) => (m ? { ca: m.ca, asr: m.asr, ra: m.ra } : undefined);
  const r: JobResult = {
    format: 'kwshield-result',
    version: 1,
    id,
    status: fields.status,
    ...(fields.error !== undefined ? { error: fields.error } : {}),
    job,
    ...(fields.metrics ? { metrics: pick(fields.metrics) } : {}),
    ...(fields.before ? { before: pick(fields.before) } : {}),
    ...(fields.der !== undefined ? { der: fields.der } : {}),
    ...(fields.clean ? { clean: pick(fields.clean) } : {}),
    runs: fields.runs,
    seconds: fields.seconds,
    date: new Date().toISOString(),
    machine: machineInfo(),
    versions: { kwshield: kwshieldVersion() },
  };
  return r;
}
