// How many and which training clips an attack poisons (specs/attacks.md section 0). GN-FT's protocol:
// floor(ratio * N) clips drawn uniformly from the whole training split (the draw may include target
// clips) and relabelled to the target; clean-label attacks poison a share of the target class only.
import { createRng, deriveSeed } from '../data/rng.ts';
import type { PoisonPlan } from './types.ts';

export interface PlanRequest {
  attack: string;
  labels: readonly number[];
  target: string;
  targetLabel: number;
  poisonRatio: number;
  seed: number;
}

export class PoisonPlanError extends Error {}

function checkRatio(ratio: number): void {
  if (!(ratio > 0 && ratio < 1)) throw new PoisonPlanError(`poison ratio must be in (0, 1), got ${ratio}`);
}

function pick(pool: number[], count: number, seed: number, attack: string): number[] {
  return createRng(deriveSeed(seed, attack, 'poison-plan'))
    .shuffle([...pool])
    .slice(0, count)
    .sort((a, b) => a - b);
}

/** Dirty-label: floor(ratio * N) clips uniformly from all training clips, relabelled to the target. */
export function dirtyLabelPlan(r: PlanRequest): PoisonPlan {
  checkRatio(r.poisonRatio);
  const count = Math.floor(r.poisonRatio * r.labels.length);
  if (count < 1) throw new PoisonPlanError(`poison ratio ${r.poisonRatio} of ${r.labels.length} training clips poisons no clip; raise --poison-ratio`);
  const all = r.labels.map((_, i) => i);
  return { ...planHead(r, 'dirty'), indices: pick(all, count, r.seed, r.attack) };
}

/** Dirty-label on non-target hosts only (DABA): `indices` chosen by the attack, checked here. */
export function chosenHostsPlan(r: PlanRequest, indices: readonly number[]): PoisonPlan {
  checkRatio(r.poisonRatio);
  const bad = indices.find((i) => !(Number.isInteger(i) && i >= 0 && i < r.labels.length) || r.labels[i] === r.targetLabel);
  if (bad !== undefined) throw new PoisonPlanError(`${r.attack}: host ${bad} is not a non-target training clip`);
  return { ...planHead(r, 'dirty'), indices: [...new Set(indices)].sort((a, b) => a - b) };
}

/** Clean-label (FlowMur): round(ratio * count of target clips) target-class clips, labels kept. */
export function cleanLabelPlan(r: PlanRequest): PoisonPlan {
  checkRatio(r.poisonRatio);
  const targets = r.labels.flatMap((l, i) => (l === r.targetLabel ? [i] : []));
  const count = Math.round(r.poisonRatio * targets.length);
  if (count < 1) throw new PoisonPlanError(`poison ratio ${r.poisonRatio} of ${targets.length} '${r.target}' clips poisons no clip; raise --poison-ratio`);
  return { ...planHead(r, 'clean'), indices: pick(targets, count, r.seed, r.attack) };
}

/** The number of hosts a dirty-label attack with a chosen host set should poison: round(ratio * N) ([GNFT] daba.py). */
export const hostCount = (ratio: number, trainClips: number): number => Math.max(1, Math.round(ratio * trainClips));

function planHead(r: PlanRequest, labelMode: 'dirty' | 'clean'): Omit<PoisonPlan, 'indices'> {
  return {
    attack: r.attack,
    labelMode,
    target: r.target,
    targetLabel: r.targetLabel,
    poisonRatio: r.poisonRatio,
    trainClips: r.labels.length,
    seed: r.seed,
  };
}

/** Labels after poisoning: dirty-label plans move their clips to the target. */
export function poisonedLabels(labels: readonly number[], plan: PoisonPlan): number[] {
  const out = [...labels];
  if (plan.labelMode === 'dirty') for (const i of plan.indices) out[i] = plan.targetLabel;
  return out;
}
