// A grid expanded into a manifest of jobs with stable ids, and the split of a manifest into shards.
//
// A job's id is the first 16 hex digits of the sha256 of its canonical (key-sorted, compact) config: the
// same grid gives the same ids on every machine, and any change to what decides a job's numbers (an
// option, a seed, a clean ratio, the data's identity) gives a new id. Where a job runs is not part of
// its config: data folders, work folders and hosts are left out, so machines with different paths
// share one results folder.
//
// Kinds: 'synth' (generated data, a prerequisite with no result file), 'attack' (one backdoored model
// per data x model x attack x attack seed, measured beside the clean model of the same configuration),
// 'defense' (one per attack job x defense x clean ratio x seed, depending on its attack job). An attack
// job and its defense jobs form a row; rows are the unit of sharding, so a shard never waits for another.
// A TorchScript model entry (the user's own model) has rows too: its attack job imports the archive and
// measures it (attack 'own': no training, no attack of kwshield's; the archive's sha256 is in the config),
// and its defense jobs purify that import.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { getAttack } from '../../attacks/index.ts';
import type { SynthPreset } from '../../data/synth.ts';
import type { WordSetName } from '../../data/words.ts';
import type { OptionValue } from '../../options/options.ts';
import { attackFrontEnd } from '../attack-run.ts';
import type { DefenseRecipe } from '../defend-run.ts';
import type { RecipeName } from '../train.ts';
import type { Grid, GridData } from './grid-file.ts';

export type JobKind = 'synth' | 'attack' | 'defense';

/** What decides a synth job's output. */
export interface SynthConfig {
  kind: 'synth';
  dataName: string;
  words: WordSetName;
  synth: { preset: SynthPreset; seed: number };
}

/** What decides an attack job's numbers: the result file's `job` without `data` (where the data is). */
export interface AttackConfig {
  kind: 'attack';
  dataName: string;
  words: WordSetName;
  /** set for generated data */
  synth?: { preset: SynthPreset; seed: number };
  model: string;
  frontEnd: string;
  attack: string;
  /** the options the grid gives (absent when none) */
  attackOptions?: Record<string, OptionValue>;
  attackSeed: number;
  /** absent for a TorchScript model's row (no poisoning of kwshield's) */
  poisonRatio?: number;
  target: string;
  /** the attack's seed again: every result has a `seed` */
  seed: number;
  epochs?: number;
  /** absent unless the grid sets it, so that the ids of grids without it do not change */
  batchSize?: number;
  trainRecipe?: RecipeName;
  /** set for the user's own model (attack 'own'): the archive's identity and its classes */
  torchscript?: { sha256: string; input: string; classes: string[] };
}

/** The attack name of a TorchScript model's row: the model as its maker gave it. */
export const OWN_MODEL_ATTACK = 'own';

/** A defense job: its attack job's config, then the defense, its recipe and options, clean ratio and seed. */
export interface DefenseConfig extends Omit<AttackConfig, 'kind'> {
  kind: 'defense';
  defense: string;
  recipe: DefenseRecipe;
  options?: Record<string, OptionValue>;
  cleanRatio: number;
}

export type JobConfig = SynthConfig | AttackConfig | DefenseConfig;

export interface ManifestJob {
  id: string;
  kind: JobKind;
  /** the row (attack job with its defense jobs) this job belongs to; null for synth jobs */
  row: number | null;
  /** ids of the jobs that must be finished first */
  dependsOn: string[];
  /** a short human description */
  label: string;
  config: JobConfig;
}

export interface ManifestData {
  name: string;
  words: WordSetName;
  /** an existing folder (absolute on the machine that expanded the grid) */
  path?: string;
  /** the synth job that generates it (its folder is WORK/data/<name>-<id>) */
  synthJob?: string;
}

export interface Manifest {
  format: 'kwshield-manifest';
  version: 1;
  grid: { name: string; file: string; sha256: string };
  /** KWSHIELD_THREADS of every job's process */
  threads: number;
  counts: { jobs: number; synth: number; attack: number; defense: number; rows: number };
  data: ManifestData[];
  /** the grid's TorchScript models (absent when it has none): where each archive and its triggered clips are */
  torchscript?: { name: string; file: string; triggered?: string }[];
  rows: { index: number; attack: string; defenses: string[] }[];
  jobs: ManifestJob[];
}

/** JSON with the keys of every object sorted, no whitespace, undefined left out: the text a job id hashes. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`cannot hash the number ${value}`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** The first 16 hex digits of sha256(canonicalJson(config)). */
export function jobId(config: unknown): string {
  return createHash('sha256').update(canonicalJson(config)).digest('hex').slice(0, 16);
}

const nonEmpty = (o: Record<string, OptionValue>) => (Object.keys(o).length ? o : undefined);

function optionText(o: Record<string, OptionValue> | undefined): string {
  return o && Object.keys(o).length
    ? ` {${Object.entries(o)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}}`
    : '';
}

/** Every job of a grid, in a fixed order: synth jobs, then row by row an attack job and its defense jobs. */
export function expandGrid(grid: Grid): Manifest {
  const jobs: ManifestJob[] = [];
  const byId = new Map<string, ManifestJob>();
  const add = (job: ManifestJob) => {
    if (byId.has(job.id)) return false; // the same job twice (e.g. two data entries that --data-root made one)
    byId.set(job.id, job);
    jobs.push(job);
    return true;
  };
  const data: ManifestData[] = [];
  const synthOf = new Map<string, string>();
  for (const d of grid.data) {
    if (d.synth) {
      const config: SynthConfig = { kind: 'synth', dataName: d.name, words: d.words, synth: d.synth };
      const id = jobId(config);
      add({ id, kind: 'synth', row: null, dependsOn: [], label: `synth ${d.name} (${d.synth.preset}, ${d.words}, seed ${d.synth.seed})`, config });
      synthOf.set(d.name, id);
      data.push({ name: d.name, words: d.words, synthJob: id });
    } else data.push({ name: d.name, words: d.words, path: d.path });
  }
  const rows: Manifest['rows'] = [];
  /** Opens a row with its attack job (just added) and adds its defense jobs. */
  const addDefenses = (attackConfig: AttackConfig, attackId: string, rowIndex: number, what: string) => {
    const row = { index: rowIndex, attack: attackId, defenses: [] as string[] };
    rows.push(row);
    for (const def of grid.defenses) {
      for (const cleanRatio of grid.cleanRatios) {
        for (const seed of grid.seeds) {
          const { kind: _kind, ...inherited } = attackConfig;
          const config: DefenseConfig = {
            ...inherited,
            kind: 'defense',
            defense: def.defense,
            recipe: def.recipe,
            ...(nonEmpty(def.options) ? { options: def.options } : {}),
            cleanRatio,
            seed,
          };
          const id = jobId(config);
          const label = `defense ${def.defense}/${def.recipe}${optionText(def.options)} clean ${cleanRatio} seed ${seed} <- ${what}`;
          if (add({ id, kind: 'defense', row: rowIndex, dependsOn: [attackId], label, config })) row.defenses.push(id);
        }
      }
    }
  };
  const dataOf = (d: GridData) => ({ kind: 'attack' as const, dataName: d.name, words: d.words, ...(d.synth ? { synth: d.synth } : {}) });
  /** A row: its attack job (labelled `verb what`), unless the same job is in the manifest already, and its defense jobs. */
  const addRow = (attackConfig: AttackConfig, verb: string, what: string) => {
    const attackId = jobId(attackConfig);
    const synthJob = synthOf.get(attackConfig.dataName);
    const rowIndex = rows.length;
    if (add({ id: attackId, kind: 'attack', row: rowIndex, dependsOn: synthJob ? [synthJob] : [], label: `${verb} ${what}`, config: attackConfig }))
      addDefenses(attackConfig, attackId, rowIndex, what);
  };
  for (const d of grid.data as GridData[]) {
    for (const model of grid.models) {
      for (const a of grid.attacks) {
        if (a.models && !a.models.includes(model)) continue;
        const frontEnd = attackFrontEnd(getAttack(a.attack), model, a.frontEnd).name;
        for (const attackSeed of grid.attackSeeds) {
          const attackConfig: AttackConfig = {
            ...dataOf(d),
            model,
            frontEnd,
            attack: a.attack,
            ...(nonEmpty(a.options) ? { attackOptions: a.options } : {}),
            attackSeed,
            poisonRatio: grid.poisonRatio,
            target: grid.target,
            seed: attackSeed,
            ...(grid.epochs ? { epochs: grid.epochs } : {}),
            ...(grid.batchSize ? { batchSize: grid.batchSize } : {}),
            ...(grid.trainRecipe ? { trainRecipe: grid.trainRecipe } : {}),
          };
          addRow(attackConfig, 'attack', `${model} ${a.attack}${optionText(a.options)} seed ${attackSeed} on ${d.name}`);
        }
      }
    }
    for (const t of grid.torchscript) {
      const attackConfig: AttackConfig = {
        ...dataOf(d),
        model: t.name,
        frontEnd: t.input,
        attack: OWN_MODEL_ATTACK,
        attackSeed: 0,
        target: grid.target,
        seed: 0,
        torchscript: { sha256: t.sha256, input: t.input, classes: t.classes },
      };
      addRow(attackConfig, 'import', `${t.name} (TorchScript) on ${d.name}`);
    }
  }
  const count = (k: JobKind) => jobs.filter((j) => j.kind === k).length;
  let sha256 = '';
  try {
    sha256 = createHash('sha256').update(readFileSync(grid.file)).digest('hex');
  } catch {
    // a grid parsed from text has no file to hash
  }
  return {
    format: 'kwshield-manifest',
    version: 1,
    grid: { name: grid.name, file: path.resolve(grid.file), sha256 },
    threads: grid.threads,
    counts: { jobs: jobs.length, synth: count('synth'), attack: count('attack'), defense: count('defense'), rows: rows.length },
    data,
    ...(grid.torchscript.length
      ? { torchscript: grid.torchscript.map((t) => ({ name: t.name, file: t.file, ...(t.triggered ? { triggered: t.triggered } : {}) })) }
      : {}),
    rows,
    jobs,
  };
}

export interface Shard {
  index: number;
  count: number;
}

/** "i/N" with 0 <= i < N (Slurm array task ids and Kubernetes completion indexes count from 0). */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) throw new Error(`--shard must be i/N, e.g. 0/4, got '${text}'`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1) throw new Error(`--shard ${text}: N must be at least 1`);
  if (index >= count) throw new Error(`--shard ${text}: i counts from 0 and must be below N (0/${count} to ${count - 1}/${count})`);
  return { index, count };
}

/**
 * The jobs of one shard, in manifest order: the rows whose index mod N is i (each row whole: an attack
 * job and all its defense jobs), and the synth jobs those rows need (several shards may need one; its
 * lock makes one of them generate it and the others wait for it or find it done).
 */
export function shardJobs(manifest: Manifest, shard: Shard): ManifestJob[] {
  const mine = manifest.jobs.filter((j) => j.row !== null && j.row % shard.count === shard.index);
  const needed = new Set(mine.flatMap((j) => j.dependsOn));
  const synth = manifest.jobs.filter((j) => j.kind === 'synth' && needed.has(j.id));
  return [...synth, ...mine];
}
