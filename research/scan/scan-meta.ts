// Exploration (issue 11): a meta-classifier scan in MNTD's manner (Xu et al., "Detecting AI Trojans Using Meta
// Neural Analysis", IEEE S&P 2021): learn what backdoored models share from shadow models the defender trains
// itself (research/scan/shadow-build.sh: clean resnets and resnets backdoored by the jumbo attack, a random waveform
// pattern per seed), then score models it has never seen. MNTD tunes its queries; with ten shadows of each kind
// that would memorise them, so this uses fixed queries and target-agnostic statistics of the answers (below) and
// an L2-regularised logistic regression. Every statistic comes from the model and the defender's clean clips
// (5% of the training split, seed 0, as `kwshield scan`); the probe patterns are jumbo draws with seeds 1000+,
// not the shadows' own triggers and not any evaluated attack's.
//
// Statistics per model (each target-agnostic: a class enters only through "the class that ...", never by name):
//   probeFlip    mean share of clips whose prediction a probe pattern changes
//   probeConcMax the largest share of clips one probe sends to a single class they were not predicted as
//   probeConcTop3 the mean of the three largest such shares
//   attractorAgree the share of probes whose most-flipped-to class is the most common such class
//   noiseConc    the largest share of Gaussian noise inputs (the clean features' per-element mean and spread) one class gets
//   shuffleConc  the same for clean clips with their frames shuffled
//   runnerUpConc the largest share of clean clips whose runner-up is one class
//   confidence   mean top softmax probability on clean clips
//   entropy      mean prediction entropy on clean clips
// and per class (for the comparison with clean references, below): where probes, noise, shuffled clips and
// runner-ups go, the mean softmax probability, and the log mean probability on the other classes' clips.
//
// usage: npx tsx research/scan/scan-meta.ts features LIST.json OUT.jsonl [--data D] [--probes 16]
//        npx tsx research/scan/scan-meta.ts evaluate FEATURES.jsonl... [--explore EXPLORE.jsonl]... --out SUMMARY.json
// (--explore: research/scan/scan-explore.ts rows of the same models, whose per-class values join the reference scores)
// LIST.json: research/scan/scan-zoo.ts's list ({run, label}); shadow entries carry "shadow": true.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { auroc } from '../../src/analysis/auroc.ts';
import { defenderClips, waveformsOf } from '../../src/analysis/run-data.ts';
import { getFrontEnd } from '../../src/audio/frontends.ts';
import { writeJsonAtomic } from '../../src/data/atomic.ts';
import { createRng } from '../../src/data/rng.ts';
import { loadModel, readManifest } from '../../src/models/checkpoint.ts';
import { add, dispose, indexSelect, keep, mean, mul, noGrad, randn, softmax, std, type Tensor, tensor, tidy } from '../../src/torch/index.ts';
import { drawJumbo, jumboWave } from './jumbo.ts';
import { readZoo } from './zoo.ts';

interface Entry {
  run: string;
  label: 'backdoored' | 'clean';
  shadow?: boolean;
}

export const statNames = [
  'probeFlip',
  'probeConcMax',
  'probeConcTop3',
  'attractorAgree',
  'noiseConc',
  'shuffleConc',
  'runnerUpConc',
  'confidence',
  'entropy',
] as const;
type Stats = Record<(typeof statNames)[number], number>;
export const perClassNames = ['probeTo', 'noiseTo', 'shuffleTo', 'runnerUpTo', 'meanProb'] as const;

interface Row extends Entry {
  model: string;
  frontEnd: string;
  attack: string;
  target: string | null;
  /** the class most probes flip clips to: the suspect target */
  suspect: string;
  stats: Stats;
  /** per class (the model's class order): where probes, noise, shuffled clips and runner-ups go; mean softmax */
  perClass: Record<string, number[]>;
  classes: string[];
  seconds: number;
}

/** Softmax rows of a forward pass, batched so a large query set stays small in memory. */
function probabilities(model: { forward(x: Tensor): Tensor }, x: Tensor): number[][] {
  const rows: number[][] = [];
  const n = x.shape[0];
  for (let start = 0; start < n; start += 128) {
    const p = noGrad(() => tidy(() => softmax(model.forward(x.narrow(0, start, Math.min(128, n - start))), 1).toFloat32Array()));
    const classes = p.length / Math.min(128, n - start);
    for (let i = 0; i < p.length; i += classes) rows.push(Array.from(p.subarray(i, i + classes)));
  }
  return rows;
}

const argmax = (r: readonly number[]) => r.reduce((best, v, i) => (v > r[best] ? i : best), 0);

/** Of the clips not predicted c before, the largest share predicted c now, and that c. */
function concentration(before: readonly number[], after: readonly number[], classes: number): { share: number; cls: number } {
  let share = 0;
  let cls = 0;
  for (let c = 0; c < classes; c++) {
    let eligible = 0;
    let hit = 0;
    before.forEach((b, i) => {
      if (b === c) return;
      eligible++;
      if (after[i] === c) hit++;
    });
    const s = eligible ? hit / eligible : 0;
    if (s > share) [share, cls] = [s, c];
  }
  return { share, cls };
}

function sharesOf(predictions: readonly number[], classes: number): number[] {
  const counts = new Array(classes).fill(0);
  for (const p of predictions) counts[p]++;
  return counts.map((c) => c / predictions.length);
}

const largestShare = (predictions: readonly number[], classes: number) => Math.max(...sharesOf(predictions, classes));

/** Per class c: the share of clips not predicted c before that are predicted c after. */
function flippedTo(before: readonly number[], after: readonly number[], classes: number): number[] {
  return Array.from({ length: classes }, (_, c) => {
    const eligible = before.filter((b) => b !== c).length;
    return eligible ? after.filter((a, i) => a === c && before[i] !== c).length / eligible : 0;
  });
}

async function statsOf(entry: Entry, data: string, probes: number): Promise<Row> {
  const started = performance.now();
  const manifest = readManifest(entry.run);
  const { model } = loadModel(entry.run);
  model.eval();
  const frontEnd = getFrontEnd(manifest.frontEnd);
  const metrics = existsSync(`${entry.run}/metrics.json`) ? JSON.parse(readFileSync(`${entry.run}/metrics.json`, 'utf8')) : {};
  try {
    const { clips, classes } = await defenderClips(data, manifest, { run: entry.run, cleanRatio: 0.05, seed: 0 });
    const waves = keep(await waveformsOf(clips, frontEnd));
    const clean = keep(tidy(() => frontEnd.apply(waves)));
    const C = classes.length;
    const p0 = probabilities(model, clean);
    const before = p0.map(argmax);

    const flips: number[] = [];
    const concs: { share: number; cls: number }[] = [];
    const probeTo = new Array(C).fill(0);
    for (let k = 0; k < probes; k++) {
      const seed = 1000 + k;
      const pattern = jumboWave(drawJumbo(seed, 'random'), seed, frontEnd.sampleRate, frontEnd.inputSamples);
      const probed = tidy(() => frontEnd.apply(add(waves, tensor(pattern, [1, pattern.length]))));
      const after = probabilities(model, probed).map(argmax);
      dispose(probed);
      flips.push(after.filter((a, i) => a !== before[i]).length / after.length);
      concs.push(concentration(before, after, C));
      flippedTo(before, after, C).forEach((v, c) => {
        probeTo[c] += v / probes;
      });
    }
    const modal = new Array(C).fill(0);
    for (const c of concs) modal[c.cls]++;
    const attractor = argmax(modal);
    const shares = concs.map((c) => c.share).sort((a, b) => b - a);

    const rng = createRng(7);
    const noise = tidy(() => add(mul(randn(clean.shape), std(clean, 0, true)), mean(clean, 0, true)));
    const noisePred = probabilities(model, noise).map(argmax);
    dispose(noise);
    const frames = clean.shape[1];
    const order = rng.shuffle([...Array(frames).keys()]);
    const shuffled = tidy(() => indexSelect(clean, 1, tensor(BigInt64Array.from(order, BigInt))));
    const shufflePred = probabilities(model, shuffled).map(argmax);
    dispose(shuffled);
    const runnerUp = p0.map((r) => {
      const top = argmax(r);
      return argmax(r.map((v, i) => (i === top ? -1 : v)));
    });
    dispose([waves, clean]);

    const stats: Stats = {
      probeFlip: flips.reduce((a, b) => a + b, 0) / flips.length,
      probeConcMax: shares[0],
      probeConcTop3: (shares[0] + shares[1] + shares[2]) / 3,
      attractorAgree: modal[attractor] / probes,
      noiseConc: largestShare(noisePred, C),
      shuffleConc: largestShare(shufflePred, C),
      runnerUpConc: largestShare(runnerUp, C),
      confidence: p0.reduce((a, r) => a + Math.max(...r), 0) / p0.length,
      entropy: p0.reduce((a, r) => a - r.reduce((s, v) => s + (v > 0 ? v * Math.log(v) : 0), 0), 0) / p0.length,
    };
    return {
      ...entry,
      model: manifest.model,
      frontEnd: manifest.frontEnd,
      attack: metrics.attack ?? 'none',
      target: entry.label === 'backdoored' ? (metrics.target ?? null) : null,
      suspect: classes[attractor],
      stats,
      classes,
      perClass: {
        probeTo,
        noiseTo: sharesOf(noisePred, C),
        shuffleTo: sharesOf(shufflePred, C),
        runnerUpTo: sharesOf(runnerUp, C),
        meanProb: Array.from({ length: C }, (_, c) => p0.reduce((a, r) => a + r[c], 0) / p0.length),
        // log of the mean probability of c on the clips of the other classes (dirty-label poisoning teaches
        // every word a little of the target)
        offClassProb: Array.from({ length: C }, (_, c) => {
          const others = p0.filter((_, i) => clips[i].label !== c);
          return Math.log(others.reduce((a, r) => a + r[c], 0) / others.length);
        }),
      },
      seconds: Math.round(performance.now() - started) / 1000,
    };
  } finally {
    model.dispose();
  }
}

// --- the meta-classifier ------------------------------------------------------------------------------------

/** Per-feature mean and spread of the training rows, for standardising. */
function standardiser(x: number[][]): (row: number[]) => number[] {
  const d = x[0].length;
  const mu = Array.from({ length: d }, (_, j) => x.reduce((a, r) => a + r[j], 0) / x.length);
  const sd = Array.from({ length: d }, (_, j) => Math.sqrt(x.reduce((a, r) => a + (r[j] - mu[j]) ** 2, 0) / x.length) || 1);
  return (row) => row.map((v, j) => (v - mu[j]) / sd[j]);
}

/** L2-regularised logistic regression by gradient descent (a dozen features, tens of rows: exact enough). */
export function fitLogistic(x: number[][], y: number[], lambda = 1): (row: number[]) => number {
  const scale = standardiser(x);
  const z = x.map(scale);
  const d = z[0].length;
  const w = new Array(d).fill(0);
  let b = 0;
  const lr = 0.1;
  for (let it = 0; it < 3000; it++) {
    const gw = new Array(d).fill(0);
    let gb = 0;
    z.forEach((r, i) => {
      const p = 1 / (1 + Math.exp(-(b + r.reduce((a, v, j) => a + v * w[j], 0))));
      const e = p - y[i];
      for (let j = 0; j < d; j++) gw[j] += e * r[j];
      gb += e;
    });
    for (let j = 0; j < d; j++) w[j] -= lr * (gw[j] / z.length + (lambda * w[j]) / z.length);
    b -= (lr * gb) / z.length;
  }
  return (row) => {
    const r = scale(row);
    return 1 / (1 + Math.exp(-(b + r.reduce((a, v, j) => a + v * w[j], 0))));
  };
}

const vector = (r: Row) => statNames.map((s) => r.stats[s]);
const isBackdoored = (r: Row) => (r.label === 'backdoored' ? 1 : 0);

function aurocOf(rows: Row[], score: (r: Row) => number): number {
  return auroc(rows.filter((r) => r.label === 'backdoored').map(score), rows.filter((r) => r.label === 'clean').map(score));
}

function evaluate(rows: Row[]) {
  const shadows = rows.filter((r) => r.shadow);
  const zoo = rows.filter((r) => !r.shadow);
  const univariate = Object.fromEntries(statNames.map((s) => [s, { shadows: aurocOf(shadows, (r) => r.stats[s]), zoo: aurocOf(zoo, (r) => r.stats[s]) }]));
  // MNTD's protocol: trained on the shadows only, scored on the zoo.
  const meta = fitLogistic(shadows.map(vector), shadows.map(isBackdoored));
  const scored = zoo.map((r) => ({ r, score: meta(vector(r)) }));
  const mntd = {
    auroc: aurocOf(zoo, (r) => meta(vector(r))),
    aurocResnet: aurocOf(
      zoo.filter((r) => r.model === 'resnet'),
      (r) => meta(vector(r)),
    ),
    accuracyAtHalf: scored.filter(({ r, score }) => (score >= 0.5 ? 1 : 0) === isBackdoored(r)).length / zoo.length,
  };
  // Leave one attack out: the shadows plus the zoo's backdoored models of the other attacks; scored on the held-out
  // attack's models against every zoo clean model (none of which is ever trained on).
  const attacks = [...new Set(zoo.filter((r) => r.label === 'backdoored').map((r) => r.attack))];
  const heldOut: Record<string, number> = {};
  const pooled: { label: number; score: number }[] = [];
  for (const a of attacks) {
    const train = [...shadows, ...zoo.filter((r) => r.label === 'backdoored' && r.attack !== a)];
    const f = fitLogistic(train.map(vector), train.map(isBackdoored));
    const test = zoo.filter((r) => r.label === 'clean' || r.attack === a);
    heldOut[a] = aurocOf(test, (r) => f(vector(r)));
    for (const r of test.filter((t) => t.label === 'backdoored')) pooled.push({ label: 1, score: f(vector(r)) });
  }
  const targetHits = zoo.filter((r) => r.label === 'backdoored' && r.suspect === r.target).length;
  return {
    reference: referenceEvaluation(rows),
    models: { shadows: shadows.length, zoo: zoo.length, zooBackdoored: zoo.filter((r) => r.label === 'backdoored').length },
    univariate,
    mntd,
    leaveOneAttackOut: heldOut,
    targetHits: `${targetHits} of ${zoo.filter((r) => r.label === 'backdoored').length}`,
    scores: scored.map(({ r, score }) => ({
      run: r.run,
      label: r.label,
      attack: r.attack,
      score: Math.round(score * 1000) / 1000,
      suspect: r.suspect,
      target: r.target,
    })),
  };
}

// --- against clean references ------------------------------------------------------------------------------
// Clean models of one configuration share their attractor classes (here 'right'): a dataset property, not a
// backdoor. So compare each class of a model with the same class in the defender's clean shadow models of the
// same family and front-end: z = (value - the references' mean) / their spread, the score the largest z over
// classes, the suspect its class. A model is never its own reference.

const eps = 1e-3;

function referenceScore(row: Row, refs: Row[], stat: string): { score: number; suspect: string } {
  let best = { score: Number.NEGATIVE_INFINITY, suspect: '' };
  row.classes.forEach((cls, c) => {
    const values = refs.map((r) => r.perClass[stat][r.classes.indexOf(cls)]);
    const mu = values.reduce((a, b) => a + b, 0) / values.length;
    const sd = Math.sqrt(values.reduce((a, v) => a + (v - mu) ** 2, 0) / (values.length - 1));
    const z = (row.perClass[stat][c] - mu) / (sd + eps);
    if (z > best.score) best = { score: z, suspect: cls };
  });
  return best;
}

function referenceEvaluation(rows: Row[]) {
  const refsOf = (row: Row) => rows.filter((r) => r.shadow && r.label === 'clean' && r.run !== row.run && r.model === row.model && r.frontEnd === row.frontEnd);
  const scored = rows.filter((r) => r.perClass && refsOf(r).length >= 3);
  const out: Record<string, unknown> = {};
  for (const group of ['zoo', 'shadows'] as const) {
    const members = scored.filter((r) => (group === 'shadows') === Boolean(r.shadow));
    const perStat: Record<string, { auroc: number; targetHits: string }> = {};
    const refs = rows.filter((r) => r.shadow && r.label === 'clean');
    const stats = Object.keys(members[0]?.perClass ?? {}).filter((k) => [...members, ...refs].every((r) => r.perClass[k]));
    for (const stat of stats) {
      const s = new Map(members.map((r) => [r.run, referenceScore(r, refsOf(r), stat)]));
      const backdoored = members.filter((r) => r.label === 'backdoored');
      perStat[stat] = {
        auroc: aurocOf(members, (r) => s.get(r.run)?.score as number),
        targetHits: `${backdoored.filter((r) => s.get(r.run)?.suspect === r.target).length} of ${backdoored.length}`,
      };
    }
    out[group] = {
      models: members.length,
      backdoored: members.filter((r) => r.label === 'backdoored').length,
      configurations: [...new Set(members.map((r) => `${r.model}/${r.frontEnd}`))],
      perStat,
    };
  }
  return out;
}

async function main() {
  const [command, ...rest] = process.argv.slice(2);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      data: { type: 'string', default: '/work/data/small-scd10' },
      probes: { type: 'string', default: '16' },
      out: { type: 'string' },
      explore: { type: 'string', multiple: true },
    },
  });
  if (command === 'features') {
    const [listFile, outFile] = positionals;
    if (!listFile || !outFile) throw new Error('usage: scan-meta.ts features LIST.json OUT.jsonl');
    const done = new Set(
      existsSync(outFile)
        ? readFileSync(outFile, 'utf8')
            .trim()
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l).run)
        : [],
    );
    const list = readZoo(listFile) as Entry[];
    for (const entry of list) {
      if (done.has(entry.run)) continue;
      const row = await statsOf(entry, values.data as string, Number(values.probes));
      appendFileSync(outFile, `${JSON.stringify(row)}\n`);
      console.error(`${entry.run} ${entry.label}: ${statNames.map((s) => `${s} ${row.stats[s].toFixed(3)}`).join(', ')} (${row.seconds} s)`);
    }
  } else if (command === 'evaluate') {
    const lines = (f: string) =>
      readFileSync(f, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));
    const rows = positionals.flatMap((f) => lines(f) as Row[]);
    // research/scan/scan-explore.ts rows add per-class statistics of their variant, oriented so that larger is more
    // suspicious: a smaller reversed-trigger norm (Neural Cleanse) or a larger margin (MM-BD).
    for (const file of (values.explore as string[] | undefined) ?? []) {
      for (const e of lines(file) as { run: string; variant: string; values: number[] }[]) {
        const row = rows.find((r) => r.run === e.run);
        if (!row) continue;
        const larger = e.variant === 'mmbd';
        row.perClass[e.variant] = e.values.map((v) => (larger ? Math.log(v) : -Math.log(v)));
      }
    }
    const summary = { created: new Date().toISOString(), ...evaluate(rows) };
    if (values.out) writeJsonAtomic(values.out, summary);
    console.log(JSON.stringify({ ...summary, scores: undefined }, null, 1));
  } else throw new Error('usage: scan-meta.ts features|evaluate ...');
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
