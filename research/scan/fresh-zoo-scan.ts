// The fresh zoo's scans (measured/scan/fresh-zoo-PLAN.md), computed as `kwshield scan --references` computes them but
// with every model measured once: the CLI re-measures all n references for each scanned model, which over the zoo
// is n + 1 times the work. The measurements are the shipped families' (src/analysis/scan-run.ts
// defaultProbeFamilies) on the defender's clean clips, which do not depend on the scanned model (the same
// data, classes, clean ratio and seed give the same clips: run-data.ts defenderClips); the verdict is the bank's
// (familyResult, bankVerdict). fresh-zoo.sh checks one model against the CLI (`check`).
//   measure  each run of LIST (one per line) into DIR/<name>.json, skipping those there (resumable)
//   verdict  SUBJECT against the measurements of the runs in a references folder (never itself) -> one JSON line
//            with the fields of `kwshield scan --json` except the measurements
//   check    a `kwshield scan --json` result against `verdict` for the same subject: the same verdict, p-values and scores
// usage: npx tsx research/scan/fresh-zoo-scan.ts measure --runs LIST --measurements DIR --data D [--clean-ratio 0.05]
//        npx tsx research/scan/fresh-zoo-scan.ts verdict --model RUN --references DIR --measurements DIR --out FILE
//        npx tsx research/scan/fresh-zoo-scan.ts check --cli FILE --ours FILE
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bankVerdict, familyResult } from '../../src/analysis/probe-bank.ts';
import { checkReferences, defaultProbeFamilies, defenderProbeClips, expandReferenceRuns } from '../../src/analysis/scan-run.ts';
import { loadModel, readManifest } from '../../src/models/checkpoint.ts';
import { studyArgs } from './zoo.ts';

const seed = 0;
const families = defaultProbeFamilies(seed);
const fileOf = (dir: string, run: string) => path.join(dir, `${path.basename(path.dirname(run))}--${path.basename(run)}.json`);

async function measure(runs: string[], dir: string, data: string, cleanRatio: number): Promise<void> {
  for (const run of runs) {
    const file = fileOf(dir, run);
    if (existsSync(file)) continue;
    const started = Date.now();
    const manifest = readManifest(run);
    const { clips: probeClips, count } = await defenderProbeClips(data, manifest, { run, cleanRatio, seed });
    const { model } = loadModel(run);
    try {
      const refused = families.flatMap((f) => (f.refuses?.(model) ? [f.name] : []));
      const measurements = Object.fromEntries(families.filter((f) => !refused.includes(f.name)).map((f) => [f.name, f.measure(model, probeClips)]));
      writeFileSync(file, `${JSON.stringify({ run: path.resolve(run), frontEnd: manifest.frontEnd, clips: count, refused, measurements })}\n`);
      console.error(`${path.basename(run)} measured in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    } finally {
      model.dispose();
      probeClips.waves.dispose();
    }
  }
}

function verdict(model: string, referencesDir: string, dir: string) {
  const references = expandReferenceRuns([referencesDir], model);
  checkReferences(model, references);
  const read = (run: string) => JSON.parse(readFileSync(fileOf(dir, run), 'utf8'));
  const own = read(model);
  const theirs = references.map(read);
  const used = families.filter((f) => !own.refused.includes(f.name));
  const v = bankVerdict(
    used.map((f) =>
      familyResult(
        f,
        own.measurements[f.name],
        theirs.map((t) => t.measurements[f.name]),
      ),
    ),
    references.length,
    own.refused.map((family: string) => ({ family, reason: 'refused' })),
  );
  return {
    model: path.resolve(model),
    verdict: v.verdict,
    by: v.by,
    target: v.verdict === 'found' ? v.target : null,
    pValue: v.pValue,
    falseAlarmBound: v.falseAlarmBound,
    references: v.references,
    referenceRuns: references.map((r) => path.resolve(r)),
    families: v.families.map(({ measurements: _, ...f }) => f),
    skipped: v.skipped,
  };
}

function check(cliFile: string, oursFile: string): void {
  const cli = JSON.parse(readFileSync(cliFile, 'utf8').trim().split('\n').pop() as string);
  const ours = JSON.parse(readFileSync(oursFile, 'utf8'));
  const pick = (r: typeof ours) => ({
    verdict: r.verdict,
    by: r.by,
    target: r.target,
    pValue: r.pValue,
    families: r.families.map((f: { family: string; score: number; pValue: number; target: string; referenceScores: number[] }) => [
      f.family,
      f.score,
      f.pValue,
      f.target,
      f.referenceScores,
    ]),
  });
  const [a, b] = [JSON.stringify(pick(cli)), JSON.stringify(pick(ours))];
  if (a !== b) {
    console.error(`the cached scan differs from kwshield scan:\n cli  ${a}\n ours ${b}`);
    process.exit(1);
  }
  console.error('the cached scan equals kwshield scan on this model');
}

const { values, positionals, cleanRatio } = studyArgs(
  'research/scan/fresh-zoo-scan.ts measure|verdict|check ... (see its head)',
  { runs: { type: 'string' }, measurements: { type: 'string' }, model: { type: 'string' }, cli: { type: 'string' }, ours: { type: 'string' } },
  { positionals: 1 },
);
const mode = positionals[0];
if (mode === 'measure' && values.runs && values.measurements && values.data) {
  const runs = readFileSync(values.runs, 'utf8').split('\n').filter(Boolean);
  await measure(runs, values.measurements, values.data, cleanRatio);
} else if (mode === 'verdict' && values.model && values.references && values.measurements && values.out) {
  writeFileSync(values.out, `${JSON.stringify(verdict(values.model, values.references, values.measurements))}\n`);
} else if (mode === 'check' && values.cli && values.ours) {
  check(values.cli, values.ours);
} else {
  console.error('usage: see the head of research/scan/fresh-zoo-scan.ts');
  process.exit(2);
}
