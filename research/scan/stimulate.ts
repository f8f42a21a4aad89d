// Exploration (issue 11; written 2026-12-02; evaluated 2026-12-03 on one backdoored and one clean ResNet, no separation: measured/scan/stimulate-2026-12-03.json): ABS-style neuron stimulation (Liu et al. 2019). For each BatchNorm channel of the
// chosen layers, the channel's output is set to a constant (BN weight 0, bias v) with v = bias + k * |weight|
// (the clean post-BN channel has mean ~bias and spread ~|weight|), and we record, for every class t, the share
// of clean clips of other classes that the model then predicts as t. A backdoor neuron should flip clips of
// every class to the target at a smaller k than clean neurons flip anything.
// usage: npx tsx research/scan/stimulate.ts RUN DATA OUT.json [layers,comma,separated]
import { writeFileSync } from 'node:fs';
import { cleanFeatures, defenderClips } from '../../src/analysis/run-data.ts';
import { balancedSubset } from '../../src/analysis/scan.ts';
import { getFrontEnd } from '../../src/audio/frontends.ts';
import { disposeFeatureSet } from '../../src/data/feature-set.ts';
import { loadModel } from '../../src/models/checkpoint.ts';
import { isBatchNorm } from '../../src/nn/layers/norm.ts';
import { indexSelect, keep, noGrad, type Tensor, tensor, tidy } from '../../src/torch/index.ts';

const [run, data, out, layerArg] = process.argv.slice(2);
const ks = [1, 2, 4, 8, 16];
const { model, manifest } = loadModel(run);
model.eval();
const { clips, classes } = await defenderClips(data, manifest, { run, cleanRatio: 0.05, seed: 0 });
const all = await cleanFeatures(clips, classes, getFrontEnd(manifest.frontEnd));
const pick = balancedSubset(all.labelList, 60, 0);
const labels = pick.map((i) => all.labelList[i]);
const x = keep(tidy(() => indexSelect(all.features, 0, tensor(BigInt64Array.from(pick, BigInt)))));
const bns = model.namedModules().filter(([, m]) => isBatchNorm(m));
const chosen = layerArg ? bns.filter(([n]) => layerArg.split(',').includes(n)) : bns.slice(-3);
const predict = (): number[] => noGrad(() => tidy(() => Array.from((model.forward(x) as Tensor).argmax(1).toArray())));
const base = predict();
const rows: { layer: string; neuron: number; k: number; flip: number[] }[] = [];
const started = Date.now();
for (const [name, m] of chosen) {
  const bn = m as unknown as { weight: Tensor; bias: Tensor; numFeatures: number };
  const w = Array.from(bn.weight.toFloat32Array());
  const b = Array.from(bn.bias.toFloat32Array());
  for (let n = 0; n < bn.numFeatures; n++) {
    for (const k of ks) {
      const wv = [...w];
      const bv = [...b];
      wv[n] = 0;
      bv[n] = b[n] + k * Math.abs(w[n]);
      noGrad(() => {
        bn.weight.copyFrom(Float32Array.from(wv));
        bn.bias.copyFrom(Float32Array.from(bv));
      });
      const p = predict();
      const flip = classes.map((_, t) => {
        const others = labels.map((l, i) => [l, i]).filter(([l]) => l !== t);
        return others.filter(([, i]) => p[i] === t).length / others.length;
      });
      rows.push({ layer: name, neuron: n, k, flip });
    }
    noGrad(() => {
      bn.weight.copyFrom(Float32Array.from(w));
      bn.bias.copyFrom(Float32Array.from(b));
    });
  }
}
writeFileSync(
  out,
  JSON.stringify({
    run,
    classes,
    layers: chosen.map(([n]) => n),
    ks,
    baseAccuracy: base.filter((p, i) => p === labels[i]).length / labels.length,
    seconds: (Date.now() - started) / 1000,
    rows,
  }),
);
disposeFeatureSet(all);
model.dispose();
