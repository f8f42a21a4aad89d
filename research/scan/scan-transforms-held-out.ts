// Sensitivity of the transform probe's excess to the transforms nearest the attacks' own settings (README scan
// section): the confirming zoo's cached rates re-scored without `phaser` (JingleBack style 5's last stage), without
// `pitch+4` (near PBSM's +5 and VSVC-DSP's +3), and without both. No model is run.
// usage: npx tsx research/scan/scan-transforms-held-out.ts RATES.jsonl ZOO-AND-REFERENCES.json
import { readFileSync } from 'node:fs';
import { auroc } from '../../src/analysis/auroc.ts';
import type { ProbeRates } from '../../src/analysis/transform-probe.ts';
import { excessVerdict } from './scan-transforms.ts';
import type { ZooEntry } from './zoo.ts';

const [ratesFile, listFile] = process.argv.slice(2);
const rates = new Map<string, ProbeRates>(
  readFileSync(ratesFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .map((r: { run: string; rates: ProbeRates }) => [r.run, r.rates]),
);
const list = JSON.parse(readFileSync(listFile, 'utf8')) as ZooEntry[];
const without = (r: ProbeRates, drop: readonly string[]): ProbeRates => {
  const keep = r.transforms.map((t, i) => (drop.includes(t) ? -1 : i)).filter((i) => i >= 0);
  return { ...r, transforms: keep.map((i) => r.transforms[i]), hits: keep.map((i) => r.hits[i]) };
};
for (const drop of [[], ['phaser'], ['pitch+4'], ['phaser', 'pitch+4']]) {
  const clean = list.filter((e) => e.label === 'clean').map((e) => e.run);
  const scored = list.map((e) => {
    const refs = clean.filter((c) => c !== e.run).map((c) => without(rates.get(c) as ProbeRates, drop));
    const v = excessVerdict(without(rates.get(e.run) as ProbeRates, drop), refs);
    return { ...e, score: v.score, verdict: v.verdict, suspect: v.class };
  });
  const pos = scored.filter((s) => s.label === 'backdoored');
  const wave = pos.filter((s) => !s.run.includes('badnets'));
  const neg = scored.filter((s) => s.label === 'clean').map((s) => s.score);
  console.log(
    `without [${drop.join(', ')}]: AUROC all ${auroc(
      pos.map((s) => s.score),
      neg,
    ).toFixed(2)}, waveform ${auroc(
      wave.map((s) => s.score),
      neg,
    ).toFixed(
      2,
    )}; waveform flagged ${wave.filter((s) => s.verdict === 'backdoored').length}/${wave.length}, target ${wave.filter((s) => s.suspect === s.target).length}/${wave.length}; clean flagged ${scored.filter((s) => s.label === 'clean' && s.verdict === 'backdoored').length}/${neg.length}`,
  );
}
