// The zoo every scan study reads, in one place: the labelled list of run folders, each backdoor's target, the
// configuration a model belongs to and its clean references, the data it is scanned on, the studies' shared
// command-line options, resumable row files, and AUROC of a score over the zoo's labels.
//
// LIST.json: [ { "run": "/work/exp/runs/resnet-badnets-s0", "label": "backdoored" },
//              { "run": "/work/exp/cache/clean-runs/resnet-mfcc-16k-fe96888fb35aed33", "label": "clean" },
//              { "run": "...", "label": "backdoored", "target": "up", "data": "/work/data/small-scd10" } ]
//   target: the backdoor's target word (default: the run's poison-plan.json); data: default --data, else the
//   data the run was trained on (model.json provenance).
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { auroc } from '../../src/analysis/auroc.ts';
import { expandReferenceRuns } from '../../src/analysis/scan-run.ts';
import { readManifest } from '../../src/models/checkpoint.ts';

export interface ZooEntry {
  run: string;
  /** the model's ground truth, a label of the study's data */
  label: 'backdoored' | 'clean';
  target?: string;
  data?: string;
}

/** A zoo model or a reference scored like one (a clean model of the references' folder). */
export type ZooSubject = ZooEntry & { group: 'zoo' | 'reference' };

/** The list's entries, runs resolved; refuses an entry without run and label. */
export function readZoo(file: string): ZooEntry[] {
  const list = JSON.parse(readFileSync(file, 'utf8')) as ZooEntry[];
  for (const e of list) {
    if (typeof e.run !== 'string' || (e.label !== 'backdoored' && e.label !== 'clean'))
      throw new Error(`${file}: every entry needs "run" and "label" (backdoored | clean), got ${JSON.stringify(e)}`);
  }
  return list.map((e) => ({ ...e, run: path.resolve(e.run) }));
}

/** A backdoored entry's target: given in the list, else its poison plan's; null for a clean model. */
export function targetOf(entry: ZooEntry): string | null {
  if (entry.label !== 'backdoored') return null;
  if (entry.target) return entry.target;
  const plan = path.join(entry.run, 'poison-plan.json');
  return existsSync(plan) ? (JSON.parse(readFileSync(plan, 'utf8')).target ?? null) : null;
}

/** The configuration references must share: family, front-end and classes. */
export const configurationOf = (run: string) => {
  const m = readManifest(run);
  return `${m.model}/${m.frontEnd}/${m.classes.join(',')}`;
};

/** The data folder a model is scanned on: the entry's, else --data, else the one it was trained on. */
export function dataOf(entry: ZooEntry, fallback?: string): string {
  const data = entry.data ?? fallback ?? (readManifest(entry.run).provenance?.data as string | undefined);
  if (!data) throw new Error(`${entry.run}: no data folder (give --data or "data" in the list)`);
  return data;
}

/** The zoo and every run folder of a references folder as subjects, and each one's references (never itself). */
export function withReferences(zoo: readonly ZooEntry[], referencesDir: string) {
  const referenceRuns = expandReferenceRuns([referencesDir]).map((r) => path.resolve(r));
  const subjects: ZooSubject[] = [
    ...zoo.map((e) => ({ ...e, group: 'zoo' as const })),
    ...referenceRuns.map((run) => ({ run, label: 'clean' as const, group: 'reference' as const })),
  ];
  const configuration = new Map(subjects.map((s) => [s.run, configurationOf(s.run)]));
  const referencesOf = (run: string) => referenceRuns.filter((r) => r !== run && configuration.get(r) === configuration.get(run));
  return { referenceRuns, subjects, configuration, referencesOf };
}

/** The studies' shared options (--out, --data, --references, --clean-ratio 0.05, --seed 0, --alpha 0.05) and their own. */
export function studyArgs(
  usage: string,
  own: Record<string, { type: 'string' | 'boolean'; default?: string }>,
  o: { positionals?: number; minPositionals?: number; required?: string[] } = {},
): { values: Record<string, string | undefined>; positionals: string[]; cleanRatio: number; seed: number; alpha: number } {
  const parsed = parseArgs({
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      data: { type: 'string' },
      references: { type: 'string' },
      'clean-ratio': { type: 'string', default: '0.05' },
      seed: { type: 'string', default: '0' },
      alpha: { type: 'string', default: '0.05' },
      ...own,
    },
  });
  const values = parsed.values as Record<string, string | undefined>;
  const positionals = parsed.positionals;
  const missing = (o.required ?? []).filter((k) => !values[k]);
  const count = o.positionals !== undefined ? positionals.length !== o.positionals : positionals.length < (o.minPositionals ?? 0);
  if (count || missing.length) {
    console.error(`usage: npx tsx ${usage}`);
    process.exit(2);
  }
  return {
    values,
    positionals,
    cleanRatio: Number(values['clean-ratio']),
    seed: Number(values.seed),
    alpha: Number(values.alpha),
  };
}

/** Rows saved one JSON line each with their key, so that a killed study resumes where it stopped. */
export function rowFile<R>(file: string) {
  const done = new Map<string, R>();
  if (existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const saved = JSON.parse(line) as R & { key: string };
      done.set(saved.key, saved);
    }
  }
  return {
    done,
    add(key: string, row: R) {
      done.set(key, row);
      appendFileSync(file, `${JSON.stringify({ key, ...row })}\n`);
    },
  };
}

/** AUROC of a score with the backdoored models as positives and the clean ones as negatives. */
export function zooAuroc<R extends { label: 'backdoored' | 'clean' }>(rows: readonly R[], score: (r: R) => number): number {
  return auroc(rows.filter((r) => r.label === 'backdoored').map(score), rows.filter((r) => r.label === 'clean').map(score));
}
