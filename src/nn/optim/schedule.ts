// Learning-rate schedules as pure functions of the epoch (or step), applied to an optimizer's lr.
import type { Optimizer } from './optimizer.ts';

export type Schedule = (epoch: number) => number;

/** CosineAnnealingLR: eta_min + (base - eta_min) (1 + cos(pi t / T)) / 2. */
export function cosineSchedule(baseLr: number, totalEpochs: number, minLr = 0): Schedule {
  return (epoch) => minLr + ((baseLr - minLr) * (1 + Math.cos((Math.PI * Math.min(epoch, totalEpochs)) / totalEpochs))) / 2;
}

/** StepLR: base * gamma^floor(epoch / stepSize). */
export function stepSchedule(baseLr: number, stepSize: number, gamma = 0.1): Schedule {
  return (epoch) => baseLr * gamma ** Math.floor(epoch / stepSize);
}

export const constantSchedule =
  (lr: number): Schedule =>
  () =>
    lr;

export function applySchedule(optimizer: Optimizer, schedule: Schedule, epoch: number): number {
  optimizer.lr = schedule(epoch);
  return optimizer.lr;
}
