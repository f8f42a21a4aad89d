// The pilot behind probe family (c) (measured/scan/fresh-zoo-PLAN.md): the committed `subspace` rows of three earlier
// zoos (each class's classifier-row share outside the clean penultimate subspace, from research/scan/scan-explore.ts)
// re-scored exactly as the shipped family scores them (src/analysis/subspace-probe.ts residualExcess, conformal test of
// src/analysis/probe-bank.ts), each model against that zoo's clean references (the reference runs in the rows). No
// model is loaded: the old zoos' models are gone, their rows are committed. A reference's own row is scored against
// the other references.
// usage: npx tsx research/scan/subspace-pilot.ts > measured/scan/subspace-pilot-2026-12-07.txt
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { conformalScore } from '../../src/analysis/probe-bank.ts';
import { residualExcess, type SubspaceResiduals } from '../../src/analysis/subspace-probe.ts';

// The small synthetic SCD-10's classes in the models' order (every row's suspect and its largest value agree with it).
const classes = ['yes', 'no', 'up', 'down', 'left', 'right', 'on', 'off', 'stop', 'go'];

interface Row {
  run: string;
  label: 'backdoored' | 'clean';
  variant: string;
  target: string | null;
  values: number[];
}
const read = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Row)
    .filter((r) => r.variant === 'subspace');
const name = (r: Row) => path.basename(r.run);
const isReference = (r: Row) => name(r).startsWith('resnet-clean-s');
const first = read('measured/scan/references-reversal-2026-12-04/explore-rows.jsonl');
const zoos = [
  { zoo: 'first zoo (2026-12-04, every target up)', rows: first },
  { zoo: 'other targets (2026-12-04)', rows: [...read('measured/scan/other-targets-2026-12-04/explore-rows.jsonl'), ...first.filter(isReference)] },
  { zoo: 'transform-probe zoo (2026-12-04)', rows: read('measured/scan/transform-probe-2026-12-04/subspace-rows.jsonl') },
];
const residuals = (r: Row): SubspaceResiduals => ({ classes, residuals: r.values, axes: 0, dimension: 0 });
const score = (s: SubspaceResiduals, others: readonly SubspaceResiduals[]) => {
  const e = residualExcess(s, others);
  return { score: e.score, target: e.class, detail: '' };
};

const tally = { badnets: { fired: 0, named: 0, models: 0 }, otherAttacks: { fired: 0, models: 0 }, zooClean: { fired: 0, models: 0 } };
for (const { zoo, rows } of zoos) {
  const references = rows.filter(isReference);
  console.log(`== ${zoo}: ${references.length} references`);
  for (const r of rows) {
    const others = references.filter((x) => x !== r).map(residuals);
    const c = conformalScore(score, residuals(r), others);
    const fired = c.pValue <= 1 / (others.length + 1);
    console.log(
      `${r.label.padEnd(10)} ${name(r).padEnd(36)} excess ${c.score.toFixed(3).padStart(6)} -> ${c.target.padEnd(5)} target ${String(r.target).padEnd(5)} p ${c.pValue.toFixed(3)}${fired ? '  fired' : ''}`,
    );
    if (isReference(r)) continue;
    if (r.label === 'clean') {
      tally.zooClean.models++;
      if (fired) tally.zooClean.fired++;
    } else if (name(r).includes('badnets')) {
      tally.badnets.models++;
      if (fired) tally.badnets.fired++;
      if (c.target === r.target) tally.badnets.named++;
    } else {
      tally.otherAttacks.models++;
      if (fired) tally.otherAttacks.fired++;
    }
  }
}
console.log(
  `\nBadNets: fired ${tally.badnets.fired} of ${tally.badnets.models}, target named ${tally.badnets.named} of ${tally.badnets.models}; waveform attacks: fired ${tally.otherAttacks.fired} of ${tally.otherAttacks.models}; the zoos' clean models: fired ${tally.zooClean.fired} of ${tally.zooClean.models}`,
);
