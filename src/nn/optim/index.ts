export { adam, adamW, type AdamOptions } from './adam.ts';
export { clipGradNorm } from './clip.ts';
export { type Optimizer } from './optimizer.ts';
export { applySchedule, constantSchedule, cosineSchedule, type Schedule, stepSchedule } from './schedule.ts';
export { sgd, type SgdOptions } from './sgd.ts';
