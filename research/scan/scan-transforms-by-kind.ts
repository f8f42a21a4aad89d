// The transform probe's excess score split by trigger kind, for the two zoos of measured/scan/transform-probe-*:
// waveform triggers that transform the whole clip (JingleBack, PBSM, VSVC-DSP) and the feature-domain Audio BadNets,
// each against all the clean models of its zoo's run. usage: npx tsx research/scan/scan-transforms-by-kind.ts
import { readFileSync, writeFileSync } from 'node:fs';
import { auroc } from '../../src/analysis/auroc.ts';

interface Row {
  run: string;
  label: 'backdoored' | 'clean';
  target: string | null;
  scores: Record<string, { t: number; verdict: string; suspect: string }>;
}
const zoos = {
  first: 'measured/scan/transform-probe-2026-12-04/scan-transforms.json',
  confirm: 'measured/scan/transform-probe-confirm-2026-12-04/scan-transforms.json',
};
const summary = Object.fromEntries(
  Object.entries(zoos).map(([name, file]) => {
    const rows = (JSON.parse(readFileSync(file, 'utf8')) as { rows: Row[] }).rows;
    const excess = (r: Row) => r.scores.excess.t;
    const clean = rows.filter((r) => r.label === 'clean').map(excess);
    const backdoored = rows.filter((r) => r.label === 'backdoored');
    const waveform = backdoored.filter((r) => !r.run.includes('badnets'));
    const badnets = backdoored.filter((r) => r.run.includes('badnets'));
    const share = (xs: Row[], ok: (r: Row) => boolean) => `${xs.filter(ok).length} of ${xs.length}`;
    return [
      name,
      {
        all: auroc(backdoored.map(excess), clean),
        waveform: auroc(waveform.map(excess), clean),
        badnets: auroc(badnets.map(excess), clean),
        waveformFlagged: share(waveform, (r) => r.scores.excess.verdict === 'backdoored'),
        waveformTargets: share(waveform, (r) => r.scores.excess.suspect === r.target),
        badnetsFlagged: share(badnets, (r) => r.scores.excess.verdict === 'backdoored'),
        cleanMax: Math.max(...clean),
      },
    ];
  }),
);
const out = 'measured/scan/transform-probe-confirm-2026-12-04/by-attack-kind.json';
writeFileSync(
  out,
  `${JSON.stringify({ created: new Date().toISOString(), command: 'npx tsx research/scan/scan-transforms-by-kind.ts', ...summary }, null, 1)}\n`,
);
console.log(JSON.stringify(summary, null, 1));
