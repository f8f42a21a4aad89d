// How well does the reference scan (`kwshield scan --references`, src/analysis/reference-scan.ts) tell
// backdoored models from clean ones? Scans every model of a labelled zoo list against the clean reference
// models of its configuration (family, front-end, classes) found in a references folder, and each reference
// against the others (leave one out: more clean models of the same kind, none its own reference). Writes
// per-model rows and, per statistic, AUROC (by the largest t), the rates at the test's alpha and target hits,
// for the zoo alone and for the zoo with the references.
//
// usage: npx tsx scripts/scan-references.ts LIST.json --references DIR --out DIR [--data D] [--clean-ratio 0.05]
//                                           [--seed 0] [--alpha 0.05]
// LIST.json: scripts/scan-zoo.ts's list ({run, label[, target, data]}). A zoo model whose configuration has
// fewer than 3 references is listed as unscored.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { toCsv } from '../src/analysis/analysis-file.ts';
import { auroc } from '../src/analysis/auroc.ts';
import { compareWithReferences, referenceStatistics } from '../src/analysis/reference-scan.ts';
import { expandReferenceRuns, referenceScanRun } from '../src/analysis/scan-run.ts';
import { readManifest } from '../src/models/checkpoint.ts';
import type { ZooEntry } from './scan-zoo.ts';

export interface ReferenceRow {
  run: string;
  label: 'backdoored' | 'clean';
  group: 'zoo' | 'reference';
  configuration: string;
  target: string | null;
  references: number;
  /** per statistic (referenceStatistics, or a reversal's in scan-references-reversal.ts): the verdict at alpha,
   * the largest t, the Bonferroni p-value, the suspect class */
  scores: Record<string, { verdict: 'backdoored' | 'clean'; t: number; p: number; suspect: string }>;
}

export interface ReferenceSummary {
  models: number;
  backdoored: number;
  clean: number;
  auroc: number;
  accuracy: number;
  tpr: number;
  fpr: number;
  targetHits: string;
}

export function summariseReferences(rows: readonly ReferenceRow[], statistic: string): ReferenceSummary {
  const pos = rows.filter((r) => r.label === 'backdoored');
  const neg = rows.filter((r) => r.label === 'clean');
  const flagged = (r: ReferenceRow) => r.scores[statistic].verdict === 'backdoored';
  const known = pos.filter((r) => r.target !== null);
  return {
    models: rows.length,
    backdoored: pos.length,
    clean: neg.length,
    auroc: auroc(
      pos.map((r) => r.scores[statistic].t),
      neg.map((r) => r.scores[statistic].t),
    ),
    accuracy: rows.length ? (pos.filter(flagged).length + neg.filter((r) => !flagged(r)).length) / rows.length : Number.NaN,
    tpr: pos.length ? pos.filter(flagged).length / pos.length : Number.NaN,
    fpr: neg.length ? neg.filter(flagged).length / neg.length : Number.NaN,
    targetHits: `${known.filter((r) => r.scores[statistic].suspect === r.target).length} of ${known.length}`,
  };
}

export const configurationOf = (run: string) => {
  const m = readManifest(run);
  return `${m.model}/${m.frontEnd}/${m.classes.join(',')}`;
};

export function targetOf(entry: ZooEntry): string | null {
  if (entry.label !== 'backdoored') return null;
  if (entry.target) return entry.target;
  const plan = path.join(entry.run, 'poison-plan.json');
  return existsSync(plan) ? (JSON.parse(readFileSync(plan, 'utf8')).target ?? null) : null;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      references: { type: 'string' },
      out: { type: 'string' },
      data: { type: 'string' },
      'clean-ratio': { type: 'string', default: '0.05' },
      seed: { type: 'string', default: '0' },
      alpha: { type: 'string', default: '0.05' },
    },
  });
  if (positionals.length !== 1 || !values.out || !values.references) {
    console.error('usage: npx tsx scripts/scan-references.ts LIST.json --references DIR --out DIR [--data D] [--clean-ratio 0.05] [--seed 0] [--alpha 0.05]');
    process.exit(2);
  }
  const list = JSON.parse(readFileSync(positionals[0], 'utf8')) as ZooEntry[];
  const cleanRatio = Number(values['clean-ratio']);
  const seed = Number(values.seed);
  const alpha = Number(values.alpha);
  const referenceRuns = expandReferenceRuns([values.references]).map((r) => path.resolve(r));
  const byConfiguration = new Map<string, string[]>();
  for (const r of referenceRuns) byConfiguration.set(configurationOf(r), [...(byConfiguration.get(configurationOf(r)) ?? []), r]);
  const subjects: (ZooEntry & { group: 'zoo' | 'reference' })[] = [
    ...list.map((e) => ({ ...e, run: path.resolve(e.run), group: 'zoo' as const })),
    ...referenceRuns.map((run) => ({ run, label: 'clean' as const, group: 'reference' as const })),
  ];
  mkdirSync(values.out, { recursive: true });
  const lines = path.join(values.out, 'scan-references.jsonl');
  const keyOf = (run: string) => JSON.stringify([run, seed, cleanRatio, alpha, referenceRuns]);
  const done = new Map<string, ReferenceRow>();
  if (existsSync(lines)) {
    for (const line of readFileSync(lines, 'utf8').split('\n').filter(Boolean)) {
      const saved = JSON.parse(line) as ReferenceRow & { key: string };
      done.set(saved.key, saved);
    }
  }
  const unscored: string[] = [];
  for (const [k, s] of subjects.entries()) {
    const key = keyOf(s.run);
    if (done.has(key)) continue;
    const configuration = configurationOf(s.run);
    const references = (byConfiguration.get(configuration) ?? []).filter((r) => r !== s.run);
    if (references.length < 3) {
      unscored.push(`${s.run} (${configuration}: ${references.length} references)`);
      continue;
    }
    const data = s.data ?? values.data ?? (readManifest(s.run).provenance?.data as string | undefined);
    if (!data) throw new Error(`${s.run}: no data folder (give --data or "data" in the list)`);
    const result = await referenceScanRun({ model: s.run, references, data, cleanRatio, seed, alpha });
    const scores = Object.fromEntries(
      referenceStatistics.map((statistic) => {
        const c = compareWithReferences(
          result.profiles.subject[statistic],
          result.profiles.references.map((p) => p[statistic]),
          result.classes,
          { statistic, alpha },
        );
        return [statistic, { verdict: c.verdict, t: c.score, p: c.pValue, suspect: c.suspectTarget }];
      }),
    ) as ReferenceRow['scores'];
    const row: ReferenceRow = { run: s.run, label: s.label, group: s.group, configuration, target: targetOf(s), references: references.length, scores };
    done.set(key, row);
    appendFileSync(lines, `${JSON.stringify({ key, ...row })}\n`);
    console.error(
      `[${k + 1}/${subjects.length}] ${s.group} ${s.label} ${path.basename(s.run)}: ${referenceStatistics.map((st) => `${st} t ${scores[st].t.toFixed(2)} p ${scores[st].p.toPrecision(2)} ${scores[st].suspect}`).join('; ')}`,
    );
  }
  const rows = subjects.map((s) => done.get(keyOf(s.run))).filter((r): r is ReferenceRow => r !== undefined);
  const summary = Object.fromEntries(
    referenceStatistics.map((statistic) => [
      statistic,
      {
        zoo: summariseReferences(
          rows.filter((r) => r.group === 'zoo'),
          statistic,
        ),
        zooAndReferences: summariseReferences(rows, statistic),
      },
    ]),
  );
  writeFileSync(
    path.join(values.out, 'scan-references.json'),
    `${JSON.stringify({ created: new Date().toISOString(), cleanRatio, seed, alpha, references: referenceRuns, summary, unscored, rows }, null, 2)}\n`,
  );
  const header = [
    'run',
    'label',
    'group',
    'configuration',
    'target',
    'references',
    ...referenceStatistics.flatMap((s) => [`${s}_t`, `${s}_p`, `${s}_suspect`]),
  ];
  writeFileSync(
    path.join(values.out, 'scan-references.csv'),
    toCsv(
      header,
      rows.map((r) => [
        r.run,
        r.label,
        r.group,
        r.configuration,
        r.target,
        r.references,
        ...referenceStatistics.flatMap((s) => [r.scores[s].t, r.scores[s].p, r.scores[s].suspect]),
      ]),
    ),
  );
  console.log(JSON.stringify({ summary, unscored }, null, 1));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
