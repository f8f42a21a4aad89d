// An SQLite index of a results folder (one row per job, a column for every job field and metric, the raw
// JSON beside them), built and updated by `kwshield grid collect`. Collecting is idempotent: rows are
// upserted by id, an unchanged file changes nothing, and corrupt files are reported and skipped.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { canonicalJson } from './manifest.ts';
import { type JobResult, readResult } from './result.ts';

export const SCHEMA_VERSION = 1;

/** Every column but the key, with its SQLite type and where its value comes from. */
const COLUMNS: [name: string, type: 'TEXT' | 'REAL' | 'INTEGER', value: (r: JobResult) => unknown][] = [
  ['status', 'TEXT', (r) => r.status],
  ['error', 'TEXT', (r) => r.error],
  ['kind', 'TEXT', (r) => r.job.kind],
  ['data', 'TEXT', (r) => r.job.data],
  ['dataName', 'TEXT', (r) => r.job.dataName],
  ['words', 'TEXT', (r) => r.job.words],
  ['model', 'TEXT', (r) => r.job.model],
  ['frontEnd', 'TEXT', (r) => r.job.frontEnd],
  ['attack', 'TEXT', (r) => r.job.attack],
  ['attackSeed', 'INTEGER', (r) => r.job.attackSeed],
  ['poisonRatio', 'REAL', (r) => r.job.poisonRatio],
  ['target', 'TEXT', (r) => r.job.target],
  ['defense', 'TEXT', (r) => (r.job.kind === 'defense' ? r.job.defense : undefined)],
  ['recipe', 'TEXT', (r) => (r.job.kind === 'defense' ? r.job.recipe : undefined)],
  ['options', 'TEXT', (r) => (r.job.kind === 'defense' && r.job.options ? canonicalJson(r.job.options) : undefined)],
  ['setting', 'TEXT', (r) => settingOf(r)],
  ['cleanRatio', 'REAL', (r) => (r.job.kind === 'defense' ? r.job.cleanRatio : undefined)],
  ['seed', 'INTEGER', (r) => r.job.seed],
  ['epochs', 'INTEGER', (r) => r.job.epochs],
  ['synth', 'TEXT', (r) => (r.job.synth ? canonicalJson(r.job.synth) : undefined)],
  ['attackOptions', 'TEXT', (r) => (r.job.attackOptions ? canonicalJson(r.job.attackOptions) : undefined)],
  ['trainRecipe', 'TEXT', (r) => r.job.trainRecipe],
  ['ca', 'REAL', (r) => r.metrics?.ca],
  ['asr', 'REAL', (r) => r.metrics?.asr],
  ['ra', 'REAL', (r) => r.metrics?.ra],
  ['beforeCa', 'REAL', (r) => r.before?.ca],
  ['beforeAsr', 'REAL', (r) => r.before?.asr],
  ['beforeRa', 'REAL', (r) => r.before?.ra],
  ['der', 'REAL', (r) => r.der],
  ['cleanCa', 'REAL', (r) => r.clean?.ca],
  ['cleanAsr', 'REAL', (r) => r.clean?.asr],
  ['cleanRa', 'REAL', (r) => r.clean?.ra],
  ['runModel', 'TEXT', (r) => r.runs?.model],
  ['runAttack', 'TEXT', (r) => r.runs?.attack],
  ['runAnalysis', 'TEXT', (r) => r.runs?.analysis],
  ['seconds', 'REAL', (r) => r.seconds],
  ['date', 'TEXT', (r) => r.date],
  ['hostname', 'TEXT', (r) => r.machine?.hostname],
  ['cpus', 'INTEGER', (r) => r.machine?.cpus],
  ['cpuModel', 'TEXT', (r) => r.machine?.cpuModel],
  ['memGb', 'REAL', (r) => r.machine?.memGb],
  ['node', 'TEXT', (r) => r.machine?.node],
  ['platform', 'TEXT', (r) => r.machine?.platform],
  ['version', 'TEXT', (r) => r.versions?.kwshield],
  ['file', 'TEXT', () => undefined],
  ['raw', 'TEXT', () => undefined],
];

export const columnNames = (): string[] => ['id', ...COLUMNS.map(([n]) => n)];
export const columnType = (name: string) => (name === 'id' ? 'TEXT' : COLUMNS.find(([n]) => n === name)?.[1]);

/** "none" for attack jobs, else defense/recipe and the options given ("gnft/default epochs=20 lr=0.01"): a column group of the paper's tables. */
export function settingOf(r: JobResult): string {
  if (r.job.kind !== 'defense') return 'none';
  const given = r.job.options ?? {};
  const options = Object.keys(given)
    .sort()
    .map((k) => ` ${k}=${given[k]}`)
    .join('');
  return `${r.job.defense}/${r.job.recipe}${options}`;
}

export class StoreError extends Error {}

function schema(db: Database.Database): void {
  db.exec(`CREATE TABLE IF NOT EXISTS results (id TEXT PRIMARY KEY, ${COLUMNS.map(([n, t]) => `"${n}" ${t}`).join(', ')})`);
  db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)');
  db.exec('CREATE INDEX IF NOT EXISTS results_model_attack ON results (model, attack)');
  db.exec('CREATE INDEX IF NOT EXISTS results_setting ON results (setting, cleanRatio)');
  const version = (db.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as { value: string } | undefined)?.value;
  if (version && Number(version) !== SCHEMA_VERSION)
    throw new StoreError(`the database has schema ${version}, this kwshield writes ${SCHEMA_VERSION}; collect into a new file`);
  db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)").run(String(SCHEMA_VERSION));
}

export interface CollectSummary {
  db: string;
  results: string;
  files: number;
  added: number;
  updated: number;
  unchanged: number;
  corrupt: { file: string; problem: string }[];
  rows: number;
}

/** Indexes every <id>.json of `results` into the SQLite file `dbFile` (created if missing). */
export function collectResults(results: string, dbFile: string): CollectSummary {
  if (!existsSync(results) || !statSync(results).isDirectory()) throw new StoreError(`${results} is not a folder of results (kwshield grid run --results)`);
  const files = readdirSync(results)
    .filter((f) => f.endsWith('.json') && !f.startsWith('.'))
    .sort();
  const db = new Database(dbFile);
  try {
    db.pragma('journal_mode = WAL');
    schema(db);
    const names = columnNames();
    const upsert = db.prepare(
      `INSERT INTO results (${names.map((n) => `"${n}"`).join(', ')}) VALUES (${names.map((n) => `@${n}`).join(', ')})
       ON CONFLICT(id) DO UPDATE SET ${names
         .slice(1)
         .map((n) => `"${n}" = excluded."${n}"`)
         .join(', ')}`,
    );
    const existing = db.prepare('SELECT raw FROM results WHERE id = ?');
    const summary: CollectSummary = {
      db: path.resolve(dbFile),
      results: path.resolve(results),
      files: files.length,
      added: 0,
      updated: 0,
      unchanged: 0,
      corrupt: [],
      rows: 0,
    };
    db.transaction(() => {
      for (const f of files) {
        const file = path.join(results, f);
        const read = readResult(file);
        if (!read.ok) {
          summary.corrupt.push({ file: f, problem: read.problem });
          continue;
        }
        const r = read.result;
        const raw = canonicalJson(r);
        const before = existing.get(r.id) as { raw: string } | undefined;
        if (before?.raw === raw) {
          summary.unchanged++;
          continue;
        }
        const row: Record<string, unknown> = { id: r.id };
        for (const [n, type, value] of COLUMNS) {
          const v = value(r);
          row[n] = v === undefined || (typeof v === 'number' && !Number.isFinite(v)) ? null : type === 'INTEGER' && typeof v === 'number' ? Math.round(v) : v;
        }
        row.file = path.resolve(file);
        row.raw = raw;
        upsert.run(row);
        if (before) summary.updated++;
        else summary.added++;
      }
    })();
    summary.rows = (db.prepare('SELECT COUNT(*) AS n FROM results').get() as { n: number }).n;
    return summary;
  } finally {
    db.close();
  }
}

export interface Filter {
  column: string;
  /** any of these (an empty string or "null" matches a missing value) */
  values: string[];
}

/** Parses `key=value` or `key=v1,v2` filters, checking the key against the columns. */
export function parseFilters(pairs: readonly string[]): Filter[] {
  return pairs.map((pair) => {
    const at = pair.indexOf('=');
    if (at <= 0) throw new StoreError(`--where '${pair}' is not key=value (e.g. model=resnet, cleanRatio=0.05,0.1)`);
    const column = pair.slice(0, at).trim();
    if (!columnNames().includes(column) || column === 'raw') {
      throw new StoreError(
        `--where: unknown column '${column}'; the columns are ${columnNames()
          .filter((c) => c !== 'raw')
          .join(', ')}`,
      );
    }
    return { column, values: pair.slice(at + 1).split(',') };
  });
}

export type Row = Record<string, string | number | null>;

/** The rows that pass every filter, in a stable order (data, model, attack, setting, clean ratio, seeds). */
export function queryResults(dbFile: string, filters: readonly Filter[] = []): Row[] {
  if (!existsSync(dbFile)) throw new StoreError(`no database at ${dbFile}; build it with kwshield grid collect RESULTS --db ${dbFile}`);
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'results'").all();
    if (tables.length === 0) throw new StoreError(`${dbFile} is not a kwshield results database (no results table); build it with kwshield grid collect`);
    const where: string[] = [];
    const params: unknown[] = [];
    for (const f of filters) {
      const type = columnType(f.column);
      const alternatives: string[] = [];
      for (const v of f.values) {
        if (v === '' || v === 'null') {
          alternatives.push(`"${f.column}" IS NULL`);
          continue;
        }
        if (type === 'REAL' || type === 'INTEGER') {
          const n = Number(v);
          if (!Number.isFinite(n)) throw new StoreError(`--where ${f.column}=${v}: ${f.column} is a number`);
          // Ratios stored as 0.05 must match "0.05" whatever the float's last bits.
          alternatives.push(`abs("${f.column}" - ?) < 1e-9`);
          params.push(n);
        } else {
          alternatives.push(`"${f.column}" = ?`);
          params.push(v);
        }
      }
      where.push(`(${alternatives.join(' OR ')})`);
    }
    const sql = `SELECT ${columnNames()
      .filter((c) => c !== 'raw')
      .map((c) => `"${c}"`)
      .join(', ')} FROM results ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY dataName, model, attack, attackSeed, kind, setting, cleanRatio, seed, id`;
    return db.prepare(sql).all(...params) as Row[];
  } finally {
    db.close();
  }
}
