// kwshield as a library: `import { buildModel, loadModel, trainModel, ... } from 'kwshield'`.
// Each layer is also importable on its own (src/torch, src/nn, src/audio, src/data, src/models, ...).

export * as analysis from './analysis/index.ts';
export * as metrics from './analysis/metrics.ts';
export * as attacks from './attacks/index.ts';
export * as audio from './audio/index.ts';
export { loadCleanData } from './data/defender-clips.ts';
export * as data from './data/index.ts';
export { type GradNormStepOptions, gradNormPenaltyStep } from './defenses/gnft-step.ts';
export * as defenses from './defenses/index.ts';
export { type AttackRunOptions, type AttackRunResult, attackRun } from './experiments/attack-run.ts';
export { type DataSplits, disposeSplits, loadSplits } from './experiments/data-splits.ts';
export { type DefendRunOptions, type DefendRunResult, defendRun } from './experiments/defend-run.ts';
export { derBetween, evaluate, evaluateBackdoor } from './experiments/evaluate.ts';
export {
  type CollectSummary,
  canonicalJson,
  collectResults,
  expandGrid,
  type Grid,
  GridError,
  type JobResult,
  jobId,
  loadGrid,
  type Manifest,
  type ManifestJob,
  paperCsv,
  paperText,
  parseFilters,
  parseGrid,
  parseShard,
  queryResults,
  type RunGridOptions,
  type RunGridSummary,
  readResult,
  resultProblem,
  runGrid,
  type Shard,
  shardJobs,
} from './experiments/grid/index.ts';
export { type ImportRunOptions, type ImportRunResult, importRun } from './experiments/import-run.ts';
export { type RecipeName, recipes, type TrainOptions, trainModel } from './experiments/train.ts';
export { fitModel, trainRun } from './experiments/train-run.ts';
export { evaluateTriggeredFolder, readTriggeredFolder, type TriggeredResult } from './experiments/triggered-folder.ts';
export { loadModel, type ModelManifest, readManifest, saveModel } from './models/checkpoint.ts';
export { buildModel, getModelSpec, type KwsModel, modelNames } from './models/index.ts';
export { accuracyAndLoss, predict } from './models/predict.ts';
export {
  batchNormMode,
  importTorchScript,
  loadTorchScriptModel,
  TorchScriptImportError,
  type TorchScriptImportReport,
  TorchScriptModel,
} from './models/torchscript.ts';
export * as nn from './nn/index.ts';
export * as report from './report/index.ts';
export { type BuiltReport, buildReport, type ReportOptions, writeReport } from './report/index.ts';
export * as torch from './torch/index.ts';
