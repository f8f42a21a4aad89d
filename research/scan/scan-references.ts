// How well does the reference scan (`kwshield scan --references`, research/scan/reference-scan.ts) tell
// backdoored models from clean ones? Scans every model of a labelled zoo list against the clean reference
// models of its configuration (family, front-end, classes) found in a references folder, and each reference
// against the others (leave one out: more clean models of the same kind, none its own reference). Writes
// per-model rows and, per statistic, AUROC (by the largest t), the rates at the test's alpha and target hits,
// for the zoo alone and for the zoo with the references.
//
// usage: npx tsx research/scan/scan-references.ts LIST.json --references DIR --out DIR [--data D] [--clean-ratio 0.05]
//                                           [--seed 0] [--alpha 0.05]
// LIST.json: research/scan/scan-zoo.ts's list ({run, label[, target, data]}). A zoo model whose configuration has
// fewer than 3 references is listed as unscored.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { toCsv } from '../../src/analysis/analysis-file.ts';
import { classProfilesRun, compareWithReferences, referenceStatistics } from './reference-scan.ts';
import { dataOf, readZoo, rowFile, studyArgs, targetOf, withReferences, type ZooSubject, zooAuroc } from './zoo.ts';

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

/** A subject's row: who it is, its configuration, its target, how many references scored it, and its scores. */
export function referenceRow(
  s: ZooSubject,
  configuration: ReadonlyMap<string, string>,
  references: readonly string[],
  scores: ReferenceRow['scores'],
): ReferenceRow {
  return {
    run: s.run,
    label: s.label,
    group: s.group,
    configuration: configuration.get(s.run) as string,
    target: targetOf(s),
    references: references.length,
    scores,
  };
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
    auroc: zooAuroc(rows, (r) => r.scores[statistic].t),
    accuracy: rows.length ? (pos.filter(flagged).length + neg.filter((r) => !flagged(r)).length) / rows.length : Number.NaN,
    tpr: pos.length ? pos.filter(flagged).length / pos.length : Number.NaN,
    fpr: neg.length ? neg.filter(flagged).length / neg.length : Number.NaN,
    targetHits: `${known.filter((r) => r.scores[statistic].suspect === r.target).length} of ${known.length}`,
  };
}

async function main(): Promise<void> {
  const { values, positionals, cleanRatio, seed, alpha } = studyArgs(
    'research/scan/scan-references.ts LIST.json --references DIR --out DIR [--data D] [--clean-ratio 0.05] [--seed 0] [--alpha 0.05]',
    {},
    { positionals: 1, required: ['out', 'references'] },
  );
  const out = values.out as string;
  const { referenceRuns, subjects, configuration, referencesOf } = withReferences(readZoo(positionals[0]), values.references as string);
  mkdirSync(out, { recursive: true });
  const lines = rowFile<ReferenceRow>(path.join(out, 'scan-references.jsonl'));
  const done = lines.done;
  const keyOf = (run: string) => JSON.stringify([run, seed, cleanRatio, alpha, referenceRuns]);
  const unscored: string[] = [];
  for (const [k, s] of subjects.entries()) {
    const key = keyOf(s.run);
    if (done.has(key)) continue;
    const references = referencesOf(s.run);
    if (references.length < 3) {
      unscored.push(`${s.run} (${configuration.get(s.run)}: ${references.length} references)`);
      continue;
    }
    const result = await classProfilesRun({ model: s.run, references, data: dataOf(s, values.data as string | undefined), cleanRatio, seed });
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
    const row = referenceRow(s, configuration, references, scores);
    lines.add(key, row);
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
    path.join(out, 'scan-references.json'),
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
    path.join(out, 'scan-references.csv'),
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
