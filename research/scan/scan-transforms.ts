// Exploration (issue 11): the transform probe (src/analysis/transform-probe.ts) on a labelled zoo, as planned in
// measured/scan/transform-probe-2026-12-04/PLAN.md before any result. For every model of the zoo and every clean
// reference: where each of the 18 generic audio transforms sends the defender's clean clips (5%, class-stratified,
// the same clips for every model, as the reference scan chooses them). Then three scores per model:
//   (a) raw: the largest rate(T, c) alone, called backdoored above 0.5;
//   (b) reference: per (T, c) the smoothed logit rate against every other clean model of the pool (the zoo's
//       clean ones and the references; leave-one-out), compareWithReferences, Bonferroni over the 180 pairs;
//   excess (chosen after the first zoo, PLAN.md's addendum): the largest rate(T, c) minus the largest reference
//       rate(T, c); backdoored if the model's excess is the strict largest among it and its references, each
//       scored against the others (a conformal test; false alarms at most 1 / (n + 1));
//   (c) the larger of (b)'s t and the `subspace` reversal's reference t (--subspace ROWS.jsonl from
//       research/scan/scan-explore.ts --variants subspace), the suspect of the larger one.
// Nothing is fitted to the labels. Rates are cached per model in OUT/rates.jsonl, so a killed run resumes.
//
// usage: npx tsx research/scan/scan-transforms.ts LIST.json --references DIR --out DIR [--data D] [--subspace ROWS.jsonl]
//                                            [--clean-ratio 0.05] [--seed 0] [--alpha 0.05]
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { toCsv } from '../../src/analysis/analysis-file.ts';
import { conformalScore } from '../../src/analysis/probe-bank.ts';
import { defenderProbeClips, expandReferenceRuns } from '../../src/analysis/scan-run.ts';
import { largestRate, logitRates, type ProbeRates, probeRates, transformFamily } from '../../src/analysis/transform-probe.ts';
import { loadModel, readManifest } from '../../src/models/checkpoint.ts';
import { compareWithReferences } from './reference-scan.ts';
import { type ReferenceRow, referenceRow, summariseReferences } from './scan-references.ts';
import { readExploreRows, suspicionOf } from './scan-references-reversal.ts';
import { configurationOf, dataOf, readZoo, studyArgs, type ZooEntry } from './zoo.ts';

type Subject = ZooEntry & { group: 'zoo' | 'reference' };

/** The probe's rates for one model on the defender's clean clips. */
async function ratesOf(run: string, data: string, cleanRatio: number, seed: number): Promise<ProbeRates & { seconds: number; clips: number }> {
  const started = Date.now();
  const { clips, count } = await defenderProbeClips(data, readManifest(run), { run, cleanRatio, seed });
  const { model } = loadModel(run);
  try {
    const r = probeRates(model, clips.waves, clips.labels, clips.classes, { sampleRate: clips.sampleRate, toModelInput: clips.toModelInput });
    return { ...r, clips: count, seconds: (Date.now() - started) / 1000 };
  } finally {
    clips.waves.dispose();
    model.dispose();
  }
}

/** The excess's conformal test as the product's probe bank runs it, with this study's row labels. */
export function excessVerdict(subject: ProbeRates, references: ProbeRates[]) {
  const c = conformalScore(transformFamily().score, subject, references);
  return {
    score: c.score,
    class: c.target,
    transform: c.detail,
    pValue: c.pValue,
    verdict: c.pValue <= 1 / (references.length + 1) ? ('backdoored' as const) : ('clean' as const),
  };
}

/** The threshold of score (a), fixed in PLAN.md. */
const RAW_THRESHOLD = 0.5;

async function main(): Promise<void> {
  const { values, positionals, cleanRatio, seed, alpha } = studyArgs(
    'research/scan/scan-transforms.ts LIST.json --references DIR --out DIR [--data D] [--subspace ROWS.jsonl] [--clean-ratio 0.05] [--seed 0] [--alpha 0.05]',
    { subspace: { type: 'string' } },
    { positionals: 1, required: ['out', 'references'] },
  );
  if (!(alpha > 0 && alpha < 1)) {
    console.error(`--alpha ${values.alpha}: the significance level must be a number in (0, 1), e.g. 0.05`);
    process.exit(2);
  }
  const zoo = readZoo(positionals[0]).map((e) => ({ ...e, group: 'zoo' as const }));
  const referenceRuns = expandReferenceRuns([values.references as string]).map((r) => path.resolve(r));
  // a reference that is also in the zoo list is scored once, as the zoo's
  const inZoo = new Set(zoo.map((e) => e.run));
  const subjects: Subject[] = [
    ...zoo,
    ...referenceRuns.filter((run) => !inZoo.has(run)).map((run) => ({ run, label: 'clean' as const, group: 'reference' as const })),
  ];
  const out = values.out as string;
  mkdirSync(out, { recursive: true });

  const cacheFile = path.join(out, 'rates.jsonl');
  const keyOf = (run: string) => JSON.stringify([run, cleanRatio, seed]);
  const rates = new Map<string, ProbeRates & { seconds: number; clips: number }>();
  if (existsSync(cacheFile)) {
    for (const line of readFileSync(cacheFile, 'utf8').split('\n').filter(Boolean)) {
      const saved = JSON.parse(line);
      rates.set(saved.key, saved.rates);
    }
  }
  for (const [k, s] of subjects.entries()) {
    const key = keyOf(s.run);
    if (rates.has(key)) continue;
    const r = await ratesOf(s.run, dataOf(s, values.data), cleanRatio, seed);
    rates.set(key, r);
    appendFileSync(cacheFile, `${JSON.stringify({ key, run: s.run, rates: r })}\n`);
    const top = largestRate(r);
    console.error(
      `[${k + 1}/${subjects.length}] ${s.label} ${path.basename(s.run)}: clean acc ${(100 * r.cleanAccuracy).toFixed(1)}%, largest rate ${top.rate.toFixed(2)} (${top.transform} -> ${top.class}), ${r.seconds.toFixed(0)} s`,
    );
  }

  const subspace = values.subspace
    ? new Map(
        readExploreRows([values.subspace])
          .filter((r) => r.variant === 'subspace')
          .map((r) => [r.run, r.values]),
      )
    : null;
  const configuration = new Map(subjects.map((s) => [s.run, configurationOf(s.run)]));
  const cleanPool = subjects.filter((s) => s.label === 'clean').map((s) => s.run);
  const rows: (ReferenceRow & { largest: ReturnType<typeof largestRate>; topPair: string; excessPair: string })[] = [];
  const unscored: string[] = [];
  for (const s of subjects) {
    const r = rates.get(keyOf(s.run));
    const references = cleanPool.filter((c) => c !== s.run && configuration.get(c) === configuration.get(s.run));
    if (!r || references.length < 3) {
      unscored.push(`${s.run}: ${r ? `${references.length} references` : 'no rates'}`);
      continue;
    }
    const largest = largestRate(r);
    const subject = logitRates(r);
    const refRates = references.map((c) => logitRates(rates.get(keyOf(c)) as ProbeRates).values);
    const probe = compareWithReferences(subject.values, refRates, subject.names, { statistic: 'transformProbe', alpha });
    const classOfPair = (pair: string) => pair.slice(pair.lastIndexOf(':') + 1);
    const scores: ReferenceRow['scores'] = {
      raw: { verdict: largest.rate > RAW_THRESHOLD ? 'backdoored' : 'clean', t: largest.rate, p: Number.NaN, suspect: largest.class },
      transformProbe: { verdict: probe.verdict, t: probe.score, p: probe.pValue, suspect: classOfPair(probe.suspectTarget) },
    };
    // the statistic chosen after the first zoo (PLAN.md addendum): the excess over the references, conformal verdict
    const excess = excessVerdict(
      r,
      references.map((c) => rates.get(keyOf(c)) as ProbeRates),
    );
    scores.excess = { verdict: excess.verdict, t: excess.score, p: excess.pValue, suspect: excess.class };
    const sub = subspace?.get(s.run);
    const subRefs = references.map((c) => subspace?.get(c)).filter((v): v is number[] => v !== undefined);
    if (subspace && sub && subRefs.length >= 3) {
      const c = compareWithReferences(
        sub.map(suspicionOf.subspace),
        subRefs.map((v) => v.map(suspicionOf.subspace)),
        readManifest(s.run).classes,
        { statistic: 'subspace', alpha },
      );
      scores.subspace = { verdict: c.verdict, t: c.score, p: c.pValue, suspect: c.suspectTarget };
      // (c): the larger t, its verdict and suspect (each test at alpha; flagged if either is)
      const larger = c.score > probe.score ? scores.subspace : scores.transformProbe;
      scores.combined = { ...larger, verdict: c.verdict === 'backdoored' || probe.verdict === 'backdoored' ? 'backdoored' : 'clean' };
    } else if (subspace) {
      unscored.push(`${s.run}: no subspace row or fewer than 3 references with one`);
    }
    rows.push({
      ...referenceRow(s, configuration, references, scores),
      largest,
      topPair: probe.suspectTarget,
      excessPair: `${excess.transform}:${excess.class}`,
    });
  }
  const statistics = ['raw', 'transformProbe', 'excess', ...(subspace ? ['subspace', 'combined'] : [])].filter((st) => rows.every((r) => r.scores[st]));
  const summary = Object.fromEntries(statistics.map((st) => [st, summariseReferences(rows, st)]));
  writeFileSync(
    path.join(out, 'scan-transforms.json'),
    `${JSON.stringify({ created: new Date().toISOString(), cleanRatio, seed, alpha, rawThreshold: RAW_THRESHOLD, references: referenceRuns, summary, unscored, rows }, null, 2)}\n`,
  );
  writeFileSync(
    path.join(out, 'scan-transforms.csv'),
    toCsv(
      [
        'run',
        'label',
        'group',
        'target',
        'references',
        'largest_rate',
        'largest_transform',
        'largest_class',
        'top_pair',
        ...statistics.flatMap((st) => [`${st}_t`, `${st}_verdict`, `${st}_suspect`]),
      ],
      rows.map((r) => [
        path.basename(r.run),
        r.label,
        r.group,
        r.target,
        r.references,
        r.largest.rate,
        r.largest.transform,
        r.largest.class,
        r.topPair,
        r.excessPair,
        ...statistics.flatMap((st) => [r.scores[st].t, r.scores[st].verdict, r.scores[st].suspect]),
      ]),
    ),
  );
  for (const r of rows) {
    console.error(
      `${r.label.padEnd(10)} ${path.basename(r.run).padEnd(38)} target ${String(r.target).padEnd(5)} ${statistics.map((st) => `${st} ${r.scores[st].t.toFixed(2)} ${r.scores[st].suspect}`).join(' | ')}  [${r.topPair}]`,
    );
  }
  console.log(JSON.stringify({ summary, unscored }, null, 1));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
