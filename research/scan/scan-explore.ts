// Exploration (issue 11): which trigger reverse-engineering tells backdoored models from clean ones here?
// For every model of a labelled list (research/scan/scan-zoo.ts's LIST.json) and every variant below, the per-class
// statistic and the model's score, the MAD anomaly index of the most extreme class (scan.ts's rule), whose
// class is the suspect target. Variants:
//   nc-global      input-domain Neural Cleanse as `kwshield scan` ran it (pattern in the global clean range)
//   nc-element     the same, each input element's pattern inside its own clean range
//   fnc-<layer>-ch feature-space Neural Cleanse on <layer>'s output, one mask value per channel
//   fnc-<layer>-el feature-space, one mask value per element, pattern in each channel's clean range
//   fnc-<layer>-chpc one mask value per channel, pattern in each channel's clean range
//   shift          the smallest time-invariant feature shift per class (spectral-shift.ts)
//   anp            where clean clips go under ANP's adversarial neuron perturbation (neuron-perturbation.ts)
//   subspace       per class, the share of the classifier row outside the clean penultimate features' 95%-variance
//                  principal subspace (a backdoor direction is one clean data does not span)
//   diffnc         input-domain Neural Cleanse (per-element range) for triggers the model has and a GN-FT-purified
//                  copy of it (default recipe, on the same clean clips) lacks: the copy must keep the true class
//   mmbd           MM-BD's maximum achievable margin per class, inputs inside each element's clean range
// One line per (model, variant) in OUT.jsonl (a second run skips those there), AUROC per variant at the end.
//
// usage: npx tsx research/scan/scan-explore.ts LIST.json OUT.jsonl [--variants a,b] [--layers layer2,layer3]
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { auroc } from '../../src/analysis/auroc.ts';
import { anomalyIndices } from '../../src/analysis/neural-cleanse.ts';
import { pca } from '../../src/analysis/pca.ts';
import { cleanFeatures, defenderClips } from '../../src/analysis/run-data.ts';
import { balancedSubset } from '../../src/analysis/scan.ts';
import { getFrontEnd } from '../../src/audio/frontends.ts';
import { timeAxisOf } from '../../src/data/augment.ts';
import { disposeFeatureSet, type FeatureSet, subsetOf } from '../../src/data/feature-set.ts';
import { getDefense } from '../../src/defenses/index.ts';
import { loadModel } from '../../src/models/checkpoint.ts';
import { classifierLayer } from '../../src/models/neurons.ts';
import { getModelSpec, type KwsModel } from '../../src/models/registry.ts';
import { withForwardHook } from '../../src/nn/index.ts';
import { resolveOptions } from '../../src/options/options.ts';
import { manualSeed, matmul, noGrad, type Tensor, tidy } from '../../src/torch/index.ts';
import { maxMargins } from './max-margin.ts';
import { type NeuralCleanseVariant, reverseEngineerVariant } from './neural-cleanse-variants.ts';
import { perturbedPredictions } from './neuron-perturbation.ts';
import { reverseEngineerShifts } from './spectral-shift.ts';
import { readZoo, targetOf } from './zoo.ts';

/** A copy of the run's model purified by GN-FT's default recipe on the defender's clean clips. */
async function purifiedCopy(run: string, clean: FeatureSet): Promise<KwsModel> {
  const { model, manifest } = loadModel(run);
  const spec = getModelSpec(manifest.model);
  const defense = getDefense('gnft');
  const options = resolveOptions(defense.name, defense.options, { ...defense.recipes.default });
  manualSeed(0);
  await defense.run(model, clean, {
    options,
    seed: 0,
    model: { name: spec.name, neuronLayers: spec.neuronLayers(model), timeAxis: timeAxisOf(getFrontEnd(manifest.frontEnd)) },
  });
  model.eval();
  return model;
}

function classifierResiduals(model: KwsModel, family: string, clean: { features: Tensor }): number[] {
  const name = classifierLayer(model, getModelSpec(family).neuronLayers(model));
  const fc = model.namedModules().find(([n]) => n === name)?.[1] as unknown as { weight: Tensor };
  return noGrad(() =>
    tidy(() => {
      let inputs: Tensor | null = null;
      withForwardHook(
        fc as never,
        (_out, x) => {
          inputs = x.flatten(1).clone();
          inputs.persistent = true;
          return undefined;
        },
        () => model.forward(clean.features),
      );
      const f = inputs as unknown as Tensor;
      const { axes, explained } = pca(f, f.shape[1]);
      let k = 0;
      for (let acc = 0; k < explained.length && acc < 0.95; k++) acc += explained[k];
      const basis = axes.narrow(1, 0, k);
      const w = fc.weight; // [classes, D]
      const inside = matmul(matmul(w, basis), basis.transpose(0, 1));
      const residual = w.sub(inside).norm(2, 1).div(w.norm(2, 1));
      const out = residual.toArray();
      f.dispose();
      return out;
    }),
  );
}

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: { variants: { type: 'string' }, layers: { type: 'string', default: 'layer2,layer3' } },
});
const [listFile, outFile] = positionals;
if (!listFile || !outFile) throw new Error('usage: npx tsx research/scan/scan-explore.ts LIST.json OUT.jsonl [--variants a,b] [--layers l1,l2]');
const list = readZoo(listFile);
const layers = (args.layers as string).split(',');
const variants: Record<string, NeuralCleanseVariant | 'mmbd' | 'shift' | 'anp' | 'subspace' | 'diffnc'> = {
  'nc-global': {},
  'nc-element': { range: 'per-element' },
  ...Object.fromEntries(
    layers.flatMap((l) => [
      [`fnc-${l}-ch`, { layer: l, maskOver: 'channels', range: 'global' }],
      [`fnc-${l}-el`, { layer: l, maskOver: 'elements', range: 'per-channel' }],
      [`fnc-${l}-chpc`, { layer: l, maskOver: 'channels', range: 'per-channel' }],
    ]),
  ),
  mmbd: 'mmbd',
  shift: 'shift',
  anp: 'anp',
  subspace: 'subspace',
  diffnc: 'diffnc',
};
const chosen = args.variants ? (args.variants as string).split(',') : Object.keys(variants);
for (const v of chosen) if (!(v in variants)) throw new Error(`unknown variant '${v}'; known: ${Object.keys(variants).join(', ')}`);

interface Row {
  run: string;
  label: string;
  variant: string;
  target: string | null;
  values: number[];
  score: number;
  suspect: string;
  seconds: number;
}
const done = new Map<string, Row>();
if (existsSync(outFile)) {
  for (const line of readFileSync(outFile, 'utf8').split('\n'))
    if (line.trim()) {
      const r = JSON.parse(line) as Row;
      done.set(`${r.run}|${r.variant}`, r);
    }
}

for (const entry of list) {
  const run = path.resolve(entry.run);
  const todo = chosen.filter((v) => !done.has(`${run}|${v}`));
  if (todo.length === 0) continue;
  const { model, manifest } = loadModel(run);
  const data = entry.data ?? (manifest.provenance as { data?: string } | undefined)?.data ?? '/work/data/small-scd10';
  const target = targetOf(entry);
  const { clips, classes } = await defenderClips(data, manifest, { run, cleanRatio: 0.05, seed: 0 });
  const all = await cleanFeatures(clips, classes, getFrontEnd(manifest.frontEnd));
  const clean = subsetOf(all, balancedSubset(all.labelList, 200, 0));
  for (const variant of todo) {
    const started = Date.now();
    const spec = variants[variant];
    let values: number[];
    let outlier: number[];
    let extra: Record<string, unknown> = {};
    if (spec === 'diffnc') {
      const purified = await purifiedCopy(run, all);
      try {
        values = reverseEngineerVariant(model, clean, { steps: 150, batchSize: 8, range: 'per-element', reference: purified, successThreshold: 0.8 }).map(
          (r) => r.maskL1,
        );
      } finally {
        purified.dispose();
      }
      outlier = anomalyIndices(values).indices; // the smallest mask
    } else if (spec === 'subspace') {
      values = classifierResiduals(model, manifest.model, clean);
      outlier = anomalyIndices(values.map((v) => -v)).indices; // the largest residual
    } else if (spec === 'anp') {
      const byEps = [0.005, 0.01, 0.02, 0.04].map((eps) => perturbedPredictions(model, clean, { eps }));
      for (const p of byEps) console.error(`  eps ${p.eps}: accuracy ${p.accuracy.toFixed(2)}, received ${p.received.map((v) => v.toFixed(2)).join(' ')}`);
      const chosenEps = byEps.find((p) => p.accuracy < 0.5) ?? byEps[byEps.length - 1];
      values = chosenEps.received;
      extra = { anp: byEps };
      outlier = anomalyIndices(values.map((v) => -v)).indices; // the class that receives most
    } else if (spec === 'shift') {
      values = reverseEngineerShifts(model, clean, {}).map((r) => r.rms);
      outlier = anomalyIndices(values).indices; // the smallest shift
    } else if (spec === 'mmbd') {
      values = maxMargins(model, clean, {}).map((m) => m.margin);
      outlier = anomalyIndices(values.map((v) => -v)).indices; // the largest margin
    } else {
      values = reverseEngineerVariant(model, clean, { steps: 150, batchSize: 8, ...spec }).map((r) => r.maskL1);
      outlier = anomalyIndices(values).indices; // the smallest mask
    }
    const top = outlier.indexOf(Math.max(...outlier));
    const row: Row = {
      run,
      label: entry.label,
      variant,
      target,
      values,
      score: outlier[top],
      suspect: classes[top],
      seconds: (Date.now() - started) / 1000,
      ...extra,
    };
    appendFileSync(outFile, `${JSON.stringify(row)}\n`);
    done.set(`${run}|${variant}`, row);
    console.error(
      `${entry.label} ${path.basename(run)} ${variant}: score ${row.score.toFixed(2)} suspect ${row.suspect} (target ${target}) ${row.seconds.toFixed(0)} s`,
    );
  }
  disposeFeatureSet(clean);
  disposeFeatureSet(all);
  model.dispose();
}

for (const variant of chosen) {
  const rows = list.map((e) => done.get(`${path.resolve(e.run)}|${variant}`)).filter((r): r is Row => !!r);
  const pos = rows.filter((r) => r.label === 'backdoored');
  const neg = rows.filter((r) => r.label === 'clean');
  const hits = pos.filter((r) => r.suspect === r.target).length;
  console.log(
    `${variant}: AUROC ${auroc(
      pos.map((r) => r.score),
      neg.map((r) => r.score),
    ).toFixed(3)} (${pos.length} vs ${neg.length}), target hits ${hits}/${pos.length}`,
  );
}
