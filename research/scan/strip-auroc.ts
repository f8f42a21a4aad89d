// How well do the per-clip detectors of `scan --inputs` tell triggered clips from clean ones, per attack: STRIP
// (src/analysis/strip.ts) and, for waveform triggers, label stability (src/analysis/stability.ts)? For each
// attack run: its backdoored model, test clips of the other classes than the target (a class-balanced
// subsample), each clean and with the run's test trigger; STRIP entropies of both (blended with the
// defender's clean clips, never the poisoned ones), the AUROC with triggered as positive (score = -entropy),
// and the detection and false-alarm rates at the threshold set on the defender's clean clips.
// Waveform-domain triggers are blended as waveforms before the front-end; a feature-domain trigger (Audio
// BadNets) is blended as features, since no waveform carries it; label stability perturbs waveforms, so it has
// nothing to say about a feature-domain trigger (no row). Stability's threshold: the defender's clean clips'
// (1 - frr) quantile, flagged above it.
//
// usage: npx tsx research/scan/strip-auroc.ts RUN [RUN ...] --out FILE.json [--data D] [--clips 200] [--mixes 32]
//                                       [--clean-ratio 0.05] [--frr 0.01] [--seed 0]
// Writes FILE.json (rows + settings) and FILE.csv beside it.

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { toCsv } from '../../src/analysis/analysis-file.ts';
import { auroc, ratesAt } from '../../src/analysis/auroc.ts';
import { attackOf, cleanFeatures, clipsForModel, defenderClips, waveformsOf } from '../../src/analysis/run-data.ts';
import { balancedSubset } from '../../src/analysis/scan.ts';
import { clipStabilities, stabilityPerturbations, stabilityThreshold } from '../../src/analysis/stability.ts';
import { stripEntropies, stripThreshold } from '../../src/analysis/strip.ts';
import { getFrontEnd } from '../../src/audio/frontends.ts';
import { disposeFeatureSet } from '../../src/data/feature-set.ts';
import { triggeredFeatureSet } from '../../src/data/features.ts';
import { createRng } from '../../src/data/rng.ts';
import { loadModel } from '../../src/models/checkpoint.ts';
import { noGrad, type Tensor, tidy } from '../../src/torch/index.ts';

export interface StripSummary {
  auroc: number;
  threshold: number;
  /** triggered clips flagged, clean clips flagged, at the threshold */
  tpr: number;
  fpr: number;
  entropy: { triggered: number; clean: number };
}

/** AUROC (triggered positive, lower entropy = more suspicious) and the rates at `threshold`. */
export function stripSummary(triggered: readonly number[], clean: readonly number[], threshold: number): StripSummary {
  const neg = (xs: readonly number[]) => xs.map((e) => -e);
  const rates = ratesAt(neg(triggered), neg(clean), -threshold);
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return { auroc: auroc(neg(triggered), neg(clean)), threshold, tpr: rates.tpr, fpr: rates.fpr, entropy: { triggered: mean(triggered), clean: mean(clean) } };
}

/** Label stability's AUROC (triggered positive, larger score = more suspicious) and its rates at the threshold. */
export interface StabilitySummary {
  auroc: number;
  threshold: number;
  tpr: number;
  fpr: number;
  score: { triggered: number; clean: number };
}

export function stabilitySummary(triggered: readonly number[], clean: readonly number[], threshold: number): StabilitySummary {
  const rates = ratesAt(triggered, clean, threshold);
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return { auroc: auroc(triggered, clean), threshold, tpr: rates.tpr, fpr: rates.fpr, score: { triggered: mean(triggered), clean: mean(clean) } };
}

interface Row extends StripSummary {
  /** label stability beside STRIP (waveform triggers only) */
  stability: StabilitySummary | null;
  run: string;
  attack: string;
  domain: 'waveform' | 'features';
  family: string;
  clips: number;
  poolClips: number;
  seconds: number;
}

async function measure(run: string, o: { data?: string; clips: number; mixes: number; cleanRatio: number; frr: number; seed: number }): Promise<Row> {
  const started = Date.now();
  const { model, manifest } = loadModel(run);
  const attack = attackOf(run, manifest);
  const owned: Tensor[] = [];
  const sets: Parameters<typeof disposeFeatureSet>[0][] = [];
  try {
    const data = o.data ?? (manifest.provenance?.data as string);
    const frontEnd = getFrontEnd(manifest.frontEnd);
    const { clips: all, classes } = await clipsForModel(data, manifest, run);
    const test = all.filter((c) => c.split === 'test');
    const candidates = test.map((c, i) => (c.label === attack.plan.targetLabel ? -1 : i)).filter((i) => i >= 0);
    const chosen = balancedSubset(
      candidates.map((i) => test[i].label),
      o.clips,
      o.seed,
    ).map((k) => candidates[k]);
    const pool = await defenderClips(data, manifest, { run, cleanRatio: o.cleanRatio, seed: o.seed, exclude: new Set(attack.plan.indices) });
    let triggeredInputs: Tensor;
    let cleanInputs: Tensor;
    let poolInputs: Tensor;
    let toModelInput: ((x: Tensor) => Tensor) | undefined;
    if (attack.domain === 'waveform') {
      cleanInputs = await waveformsOf(
        chosen.map((i) => test[i]),
        frontEnd,
      );
      owned.push(cleanInputs);
      // As the data layer applies a trigger: the clips' positions in the test list, the artifact's seed.
      triggeredInputs = noGrad(() => tidy(() => attack.trigger.apply(cleanInputs, createRng(attack.artifact.seed), chosen)));
      triggeredInputs.persistent = true;
      owned.push(triggeredInputs);
      poolInputs = await waveformsOf(pool.clips, frontEnd);
      owned.push(poolInputs);
      toModelInput = (w) => frontEnd.apply(w);
    } else {
      const clean = await cleanFeatures(
        chosen.map((i) => test[i]),
        classes,
        frontEnd,
      );
      const triggered = await triggeredFeatureSet(
        chosen.map((i) => test[i]),
        classes,
        frontEnd,
        attack.trigger,
        attack.artifact.seed,
      );
      const poolSet = await cleanFeatures(pool.clips, classes, frontEnd);
      sets.push(clean, triggered, poolSet);
      [cleanInputs, triggeredInputs, poolInputs] = [clean.features, triggered.features, poolSet.features];
    }
    const threshold = stripThreshold(
      stripEntropies(model, poolInputs, poolInputs, { mixes: o.mixes, seed: o.seed, toModelInput, selfInPool: (i) => i }),
      o.frr,
    );
    const onTriggered = stripEntropies(model, triggeredInputs, poolInputs, { mixes: o.mixes, seed: o.seed + 1, toModelInput });
    const onClean = stripEntropies(model, cleanInputs, poolInputs, { mixes: o.mixes, seed: o.seed + 1, toModelInput });
    let stability: StabilitySummary | null = null;
    if (attack.domain === 'waveform' && toModelInput) {
      const so = { sampleRate: frontEnd.sampleRate, toModelInput, perturbations: stabilityPerturbations(o.seed) };
      const score = (w: Tensor) => clipStabilities(model, w, so).map((c) => c.score);
      stability = stabilitySummary(score(triggeredInputs), score(cleanInputs), stabilityThreshold(score(poolInputs), o.frr));
    }
    return {
      run: path.resolve(run),
      attack: attack.attack,
      domain: attack.domain,
      family: manifest.model,
      clips: chosen.length,
      poolClips: pool.clips.length,
      ...stripSummary(onTriggered, onClean, threshold),
      stability,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    for (const t of owned) t.dispose();
    for (const s of sets) disposeFeatureSet(s);
    attack.dispose();
    model.dispose();
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      data: { type: 'string' },
      clips: { type: 'string', default: '200' },
      mixes: { type: 'string', default: '32' },
      'clean-ratio': { type: 'string', default: '0.05' },
      frr: { type: 'string', default: '0.01' },
      seed: { type: 'string', default: '0' },
    },
  });
  if (positionals.length === 0 || !values.out) {
    console.error(
      'usage: npx tsx research/scan/strip-auroc.ts RUN [RUN ...] --out FILE.json [--data D] [--clips 200] [--mixes 32] [--clean-ratio 0.05] [--frr 0.01] [--seed 0]',
    );
    process.exit(2);
  }
  const o = {
    data: values.data,
    clips: Number(values.clips),
    mixes: Number(values.mixes),
    cleanRatio: Number(values['clean-ratio']),
    frr: Number(values.frr),
    seed: Number(values.seed),
  };
  const rows: Row[] = [];
  for (const run of positionals) {
    const row = await measure(run, o);
    rows.push(row);
    console.error(
      `${row.attack} (${row.family}, ${row.domain}): STRIP AUROC ${row.auroc.toFixed(3)}, TPR ${(100 * row.tpr).toFixed(1)}% FPR ${(100 * row.fpr).toFixed(1)}% at ${row.threshold.toFixed(4)}; stability ${row.stability ? `AUROC ${row.stability.auroc.toFixed(3)}, TPR ${(100 * row.stability.tpr).toFixed(1)}% FPR ${(100 * row.stability.fpr).toFixed(1)}%` : 'n/a (feature trigger)'}; ${row.seconds.toFixed(0)} s`,
    );
  }
  mkdirSync(path.dirname(path.resolve(values.out)), { recursive: true });
  writeFileSync(values.out, `${JSON.stringify({ created: new Date().toISOString(), settings: o, rows }, null, 2)}\n`);
  const header = ['run', 'attack', 'domain', 'family', 'clips', 'poolClips', 'auroc', 'threshold', 'tpr', 'fpr', 'seconds'] as const;
  writeFileSync(
    `${values.out.replace(/\.json$/, '')}.csv`,
    toCsv(
      [...header, 'entropy_triggered', 'entropy_clean', 'stability_auroc', 'stability_threshold', 'stability_tpr', 'stability_fpr'],
      rows.map((r) => [
        ...header.map((h) => r[h]),
        r.entropy.triggered,
        r.entropy.clean,
        r.stability?.auroc ?? '',
        r.stability?.threshold ?? '',
        r.stability?.tpr ?? '',
        r.stability?.fpr ?? '',
      ]),
    ),
  );
  console.log(JSON.stringify(rows.map((r) => ({ attack: r.attack, auroc: r.auroc, tpr: r.tpr, fpr: r.fpr, stabilityAuroc: r.stability?.auroc ?? null }))));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
