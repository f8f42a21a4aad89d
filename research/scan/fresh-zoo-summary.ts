// The fresh zoo's list and summary (measured/scan/fresh-zoo-PLAN.md; research/scan/fresh-zoo.sh runs both).
//   list     the zoo from the attack runs' metrics.json: each backdoored run (attack, target, front-end, ASR) and
//            each attack run's clean model of the same front-end and seed; a FlowMur run under 50% ASR is a failed
//            attack, listed apart and left out of every score (the plan says so before any run)
//   summary  from the `kwshield scan --json` results: the numbers the plan names, whatever they show
//            - AUROC over the seven attacks, backdoored vs the zoo's clean models, score 1 - p (the bank's
//              Bonferroni-corrected conformal p; ties count half), and with the references scored against the
//              others as further clean models; the same per attack
//            - flagged and false alarms at the default verdict; the target named (found with the true target)
//            - leave-one-family-out: each probe family dropped in turn, the verdict recomputed from the others
//              (p = (K - 1) x their smallest p), overall and on the attacks that family was built for
//            - the 16 kHz models against references on the full split and on the defender's 5% share
//            - per clip: STRIP and label stability AUROC per attack (per-clip-*.json of strip-auroc.ts)
// usage: npx tsx research/scan/fresh-zoo-summary.ts list --runs DIR --out zoo.json
//        npx tsx research/scan/fresh-zoo-summary.ts summary --zoo zoo.json --out DIR
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { auroc } from '../../src/analysis/auroc.ts';

export interface FreshZooEntry {
  run: string;
  label: 'backdoored' | 'clean' | 'failed';
  attack: string | null;
  target: string | null;
  frontEnd: string;
  asr: number | null;
}

/** Which probe family each attack's trigger kind was built for (fixed in the plan). */
export const familyFor: Record<string, string> = {
  badnets: 'subspace',
  jingleback: 'transform',
  pbsm: 'transform',
  'vsvc-dsp': 'transform',
  ultrasonic: 'additive',
  daba: 'additive',
  flowmur: 'additive',
};

/** The plan's failure rule: a FlowMur run under 50% ASR did not implant a backdoor worth the name. */
export const failedAttack = (attack: string, asr: number) => attack === 'flowmur' && asr < 0.5;

const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8'));

export function zooList(runsDir: string): FreshZooEntry[] {
  const out: FreshZooEntry[] = [];
  const clean = new Map<string, FreshZooEntry>();
  for (const name of readdirSync(runsDir).sort()) {
    const file = path.join(runsDir, name, 'metrics.json');
    if (!existsSync(file)) continue;
    const m = readJson(file);
    const asr = m.backdoored.asr as number;
    out.push({
      run: path.resolve(runsDir, name),
      label: failedAttack(m.attack, asr) ? 'failed' : 'backdoored',
      attack: m.attack,
      target: m.target,
      frontEnd: m.frontEnd,
      asr,
    });
    if (m.clean?.run) clean.set(m.clean.run, { run: m.clean.run, label: 'clean', attack: null, target: null, frontEnd: m.frontEnd, asr: null });
  }
  return [...out, ...clean.values()];
}

interface FamilyRow {
  family: string;
  pValue: number;
  fired: boolean;
  target: string;
  score: number;
  referenceScores: number[];
}
interface ScanRow {
  verdict: 'found' | 'not-found';
  by: string;
  target: string | null;
  pValue: number;
  references: number;
  families: FamilyRow[];
}

/**
 * The verdict from a subset of the families, as the bank computes it (Bonferroni over that subset), and the plan's
 * secondary score: 1 - p with ties broken by the largest family margin, (score - the references' largest) / (their
 * range), squashed to a thousandth so it never crosses a p level.
 */
export function verdictOf(families: readonly FamilyRow[]): { found: boolean; pValue: number; target: string; tieBroken: number } {
  const best = families.reduce((a, f) => (f.pValue < a.pValue ? f : a), families[0]);
  const pValue = Math.min(1, families.length * best.pValue);
  const margin = Math.max(
    ...families.map((f) => (f.score - Math.max(...f.referenceScores)) / (Math.max(...f.referenceScores) - Math.min(...f.referenceScores) + 1e-9)),
  );
  return { found: families.some((f) => f.fired), pValue, target: best.target, tieBroken: 1 - pValue + 1e-3 * Math.tanh(margin) };
}

interface Scored {
  entry: FreshZooEntry;
  scan: ScanRow;
}

function scoreRows(rows: readonly Scored[], keep: (f: FamilyRow) => boolean = () => true) {
  const scored = rows.map((r) => ({ ...r, v: verdictOf(r.scan.families.filter(keep)) }));
  const pos = scored.filter((r) => r.entry.label === 'backdoored');
  const neg = scored.filter((r) => r.entry.label === 'clean');
  return {
    backdoored: pos.length,
    clean: neg.length,
    auroc: auroc(
      pos.map((r) => 1 - r.v.pValue),
      neg.map((r) => 1 - r.v.pValue),
    ),
    aurocTieBroken: auroc(
      pos.map((r) => r.v.tieBroken),
      neg.map((r) => r.v.tieBroken),
    ),
    flagged: pos.filter((r) => r.v.found).length,
    falseAlarms: neg.filter((r) => r.v.found).length,
    targetNamed: pos.filter((r) => r.v.found && r.v.target === r.entry.target).length,
    targetPointed: pos.filter((r) => r.v.target === r.entry.target).length,
  };
}

function loadScans(zoo: readonly FreshZooEntry[], dir: string): Scored[] {
  return zoo.flatMap((entry) => {
    const file = path.join(dir, `${path.basename(entry.run)}.json`);
    return existsSync(file) ? [{ entry, scan: readJson(file) as ScanRow }] : [];
  });
}

function summary(zooFile: string, out: string) {
  const zoo = readJson(zooFile) as FreshZooEntry[];
  const main = loadScans(zoo, path.join(out, 'scans'));
  const referenceDir = path.join(out, 'scans-references');
  const references: Scored[] = existsSync(referenceDir)
    ? readdirSync(referenceDir)
        .filter((f) => f.endsWith('.json'))
        .map((f) => ({
          entry: { run: f, label: 'clean' as const, attack: null, target: null, frontEnd: f.split('--')[0], asr: null },
          scan: readJson(path.join(referenceDir, f)),
        }))
    : [];
  const attacks = [...new Set(zoo.filter((e) => e.attack).map((e) => e.attack as string))].sort();
  const families = [...new Set(main.flatMap((r) => r.scan.families.map((f) => f.family)))];
  const cleanOnly = main.filter((r) => r.entry.label === 'clean');
  const result = {
    created: new Date().toISOString(),
    zoo: {
      backdoored: zoo.filter((e) => e.label === 'backdoored').length,
      clean: zoo.filter((e) => e.label === 'clean').length,
      failed: zoo.filter((e) => e.label === 'failed').map((e) => ({ run: e.run, asr: e.asr })),
      scanned: main.length,
      referencesScanned: references.length,
    },
    all: scoreRows(main),
    withReferences: scoreRows([...main, ...references]),
    perAttack: Object.fromEntries(attacks.map((a) => [a, scoreRows([...main.filter((r) => r.entry.attack === a), ...cleanOnly])])),
    leaveOneFamilyOut: Object.fromEntries(
      families.map((left) => {
        const keep = (f: FamilyRow) => f.family !== left;
        const itsAttacks = attacks.filter((a) => familyFor[a] === left);
        return [
          left,
          { all: scoreRows(main, keep), itsAttacks: scoreRows([...main.filter((r) => itsAttacks.includes(r.entry.attack ?? '')), ...cleanOnly], keep) },
        ];
      }),
    ),
    defenderShare: (() => {
      const sixteen = main.filter((r) => r.entry.frontEnd === 'mfcc-16k');
      const defender = loadScans(
        sixteen.map((r) => r.entry),
        path.join(out, 'scans-defender'),
      );
      return { full: scoreRows(sixteen), defender: scoreRows(defender) };
    })(),
    models: main.map((r) => ({
      run: path.basename(r.entry.run),
      label: r.entry.label,
      attack: r.entry.attack,
      target: r.entry.target,
      asr: r.entry.asr,
      verdict: r.scan.verdict,
      by: r.scan.by,
      named: r.scan.target,
      pValue: r.scan.pValue,
      families: r.scan.families.map((f) => ({ family: f.family, pValue: f.pValue, fired: f.fired, target: f.target, score: f.score })),
    })),
    perClip: perClip(out),
  };
  writeFileSync(path.join(out, 'summary.json'), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(path.join(out, 'summary.md'), markdown(result));
  console.log(markdown(result));
}

interface ClipRow {
  attack: string;
  auroc: number;
  stability: { auroc: number } | null;
}
function perClip(out: string) {
  const rows = readdirSync(out)
    .filter((f) => /^per-clip-\d+\.json$/.test(f))
    .flatMap((f) => readJson(path.join(out, f)).rows as ClipRow[]);
  const attacks = [...new Set(rows.map((r) => r.attack))].sort();
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
  return attacks.map((a) => {
    const of = rows.filter((r) => r.attack === a);
    const stability = of.flatMap((r) => (r.stability ? [r.stability.auroc] : []));
    return { attack: a, models: of.length, strip: mean(of.map((r) => r.auroc)), stability: stability.length ? mean(stability) : null };
  });
}

type Score = ReturnType<typeof scoreRows>;
function markdown(r: {
  zoo: { backdoored: number; clean: number; failed: { run: string; asr: number | null }[] };
  all: Score;
  withReferences: Score;
  perAttack: Record<string, Score>;
  leaveOneFamilyOut: Record<string, { all: Score; itsAttacks: Score }>;
  defenderShare: { full: Score; defender: Score };
  perClip: { attack: string; models: number; strip: number; stability: number | null }[];
}): string {
  const f = (x: number) => (Number.isNaN(x) ? '-' : x.toFixed(2));
  const line = (name: string, s: Score) =>
    `| ${name} | ${s.backdoored} vs ${s.clean} | ${f(s.auroc)} | ${f(s.aurocTieBroken)} | ${s.flagged} of ${s.backdoored} | ${s.falseAlarms} of ${s.clean} | ${s.targetNamed} of ${s.backdoored} |`;
  const head = '| models | backdoored vs clean | AUROC (1 - p) | AUROC (ties broken) | flagged | false alarms | target named |\n|---|---|---|---|---|---|---|';
  return [
    `# Fresh zoo: summary (${new Date().toISOString()}), against PLAN.md`,
    '',
    `${r.zoo.backdoored} backdoored, ${r.zoo.clean} clean; failed attacks (FlowMur under 50% ASR, left out): ${r.zoo.failed.map((x) => `${path.basename(x.run)} (ASR ${f(100 * (x.asr ?? Number.NaN))}%)`).join(', ') || 'none'}`,
    '',
    head,
    line('all seven attacks', r.all),
    line('with the references scored as clean models', r.withReferences),
    ...Object.entries(r.perAttack).map(([a, s]) => line(a, s)),
    '',
    '## Leave one probe family out',
    '',
    head,
    ...Object.entries(r.leaveOneFamilyOut).flatMap(([fam, s]) => [
      line(`without ${fam}: all`, s.all),
      line(`without ${fam}: the attacks it was built for`, s.itsAttacks),
    ]),
    '',
    "## 16 kHz models: references on the full split vs the defender's share",
    '',
    head,
    line('full split', r.defenderShare.full),
    line("defender's 5%", r.defenderShare.defender),
    '',
    '## Per clip (AUROC, triggered vs clean test clips; goal >= 0.95 on each)',
    '',
    '| attack | models | STRIP | label stability |\n|---|---|---|---|',
    ...r.perClip.map((c) => `| ${c.attack} | ${c.models} | ${f(c.strip)} | ${c.stability === null ? 'n/a (feature trigger)' : f(c.stability)} |`),
    '',
  ].join('\n');
}

function main(): void {
  const [mode, ...rest] = process.argv.slice(2);
  const { values } = parseArgs({ args: rest, options: { runs: { type: 'string' }, out: { type: 'string' }, zoo: { type: 'string' } } });
  if (mode === 'list' && values.runs && values.out) {
    const list = zooList(values.runs);
    writeFileSync(values.out, `${JSON.stringify(list, null, 1)}\n`);
    console.error(`${list.length} models in ${values.out}`);
  } else if (mode === 'summary' && values.zoo && values.out) {
    summary(values.zoo, values.out);
  } else {
    console.error('usage: npx tsx research/scan/fresh-zoo-summary.ts list --runs DIR --out zoo.json | summary --zoo zoo.json --out DIR');
    process.exit(2);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
