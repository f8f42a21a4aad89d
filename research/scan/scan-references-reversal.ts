// Exploration (issue 11): do the trigger reversals of research/scan/scan-explore.ts separate backdoored from clean
// models once each class is measured against the same class of clean reference models, as the reference scan
// (research/scan/reference-scan.ts) does for forward statistics? A reversal's per-class value alone names the
// classes every model of the data leans towards ('right' here, README scan section); against references only
// what is unusual for that class in that configuration remains.
//
// Reads scan-explore.ts's rows for the zoo models and for the references (one JSONL line per model and variant),
// turns each variant's values into "larger is more suspicious" on a log scale (a smaller mask or shift, a larger
// margin or residual), and scores every model against the references of its configuration, leaving itself out.
// No threshold or transform is fitted to the labels; choosing the best variant on this zoo would be, so a
// chosen one needs a fresh zoo to confirm it.
//
// usage: npx tsx research/scan/scan-references-reversal.ts ROWS.jsonl... --zoo LIST.json --references DIR --out FILE.json [--alpha 0.05]
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { readManifest } from '../../src/models/checkpoint.ts';
import { compareWithReferences } from './reference-scan.ts';
import { type ReferenceRow, referenceRow, summariseReferences } from './scan-references.ts';
import { configurationOf, readZoo, studyArgs, withReferences } from './zoo.ts';

/** One line of research/scan/scan-explore.ts's output. */
interface ExploreRow {
  run: string;
  variant: string;
  values: number[];
}

/** How each variant's per-class value becomes "larger is more suspicious" (log: the values are sizes). */
export const suspicionOf: Record<string, (v: number) => number> = {
  'nc-global': (v) => -Math.log(v), // Neural Cleanse: a smaller mask reaches the class more cheaply
  'nc-element': (v) => -Math.log(v),
  shift: (v) => -Math.log(v), // the smallest time-invariant shift to the class
  mmbd: (v) => Math.log(v), // MM-BD: a larger achievable margin
  subspace: (v) => Math.log(v), // the classifier row's share outside the clean features' subspace
};
const suspicionFor = (variant: string) => suspicionOf[variant] ?? (variant.startsWith('fnc-') ? suspicionOf['nc-global'] : undefined);

export function readExploreRows(files: readonly string[]): ExploreRow[] {
  return files.flatMap((f) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => {
        const r = JSON.parse(l) as ExploreRow;
        return { run: path.resolve(r.run), variant: r.variant, values: r.values };
      }),
  );
}

async function main(): Promise<void> {
  const { values, positionals, alpha } = studyArgs(
    'research/scan/scan-references-reversal.ts ROWS.jsonl... --zoo LIST.json --references DIR --out FILE.json [--alpha 0.05]',
    { zoo: { type: 'string' } },
    { minPositionals: 1, required: ['zoo', 'references', 'out'] },
  );
  const { referenceRuns, subjects } = withReferences(readZoo(values.zoo as string), values.references as string);
  const rows = readExploreRows(positionals);
  const valuesOf = new Map(rows.map((r) => [`${r.run}|${r.variant}`, r.values]));
  const variants = [...new Set(rows.map((r) => r.variant))].filter((v) => suspicionFor(v));
  const configuration = new Map(subjects.map((s) => [s.run, configurationOf(s.run)]));

  const scored: ReferenceRow[] = [];
  const unscored: string[] = [];
  for (const s of subjects) {
    const classes = readManifest(s.run).classes;
    const references = referenceRuns.filter((r) => r !== s.run && configuration.get(r) === configuration.get(s.run));
    const scores: ReferenceRow['scores'] = {};
    for (const variant of variants) {
      const transform = suspicionFor(variant) as (v: number) => number;
      const subject = valuesOf.get(`${s.run}|${variant}`);
      const refValues = references.map((r) => valuesOf.get(`${r}|${variant}`)).filter((v): v is number[] => v !== undefined);
      if (!subject || refValues.length < 3) continue;
      const c = compareWithReferences(
        subject.map(transform),
        refValues.map((v) => v.map(transform)),
        classes,
        { statistic: variant, alpha },
      );
      scores[variant] = { verdict: c.verdict, t: c.score, p: c.pValue, suspect: c.suspectTarget };
    }
    if (Object.keys(scores).length < variants.length) {
      unscored.push(`${s.run}: ${variants.filter((v) => !scores[v]).join(', ')} missing (its rows or fewer than 3 references')`);
      continue;
    }
    scored.push(referenceRow(s, configuration, references, scores));
  }
  const summary = Object.fromEntries(
    variants.map((v) => [
      v,
      {
        zoo: summariseReferences(
          scored.filter((r) => r.group === 'zoo'),
          v,
        ),
        zooAndReferences: summariseReferences(scored, v),
      },
    ]),
  );
  writeFileSync(
    values.out as string,
    `${JSON.stringify({ created: new Date().toISOString(), alpha, references: referenceRuns, summary, unscored, rows: scored }, null, 2)}\n`,
  );
  for (const r of scored) {
    console.error(
      `${r.group} ${r.label} ${path.basename(r.run)}: ${variants.map((v) => `${v} t ${r.scores[v].t.toFixed(2)} ${r.scores[v].suspect}`).join('; ')}`,
    );
  }
  console.log(JSON.stringify({ summary, unscored }, null, 1));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
