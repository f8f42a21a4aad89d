export { type AdamOptions, adam, adamW } from './adam.ts';
export { clipGradNorm } from './clip.ts';
export type { Optimizer } from './optimizer.ts';
export { applySchedule, constantSchedule, cosineSchedule, type Schedule, stepSchedule } from './schedule.ts';
export { type SgdOptions, sgd } from './sgd.ts';
