// The analysis (DESIGN.md src/analysis): what a backdoor does inside a model and how to tell it is there.
//
//   import { analysis } from 'kwshield';
//   const grads = analysis.neuronGradients(model, ['layer3.1.conv2', 'conv2d'], clean);   // per-neuron L1/L2
//   const zones = analysis.lossChanges(model, layers, clean, { set: triggered, targetLabel }); // CLC/BLC, zones
//   const map = analysis.embedClips(model, 'fc', clean, triggered, { method: 'tsne' });    // Fig. 5
//   const scores = analysis.scanModel(model, { neuronLayers, inputKind: 'spectral' }, clean); // uncalibrated scores
//   const v = await analysis.referenceScanRun({ model: run, references, data });          // found / not-found
//   const h = analysis.stripEntropies(model, inputs, cleanPool);                           // per-input STRIP
//   const s = analysis.clipStabilities(model, waves, { sampleRate, toModelInput });        // per-input label stability
//   await analysis.analyzeRun({ model: run, data, attackOf: run, out });                   // analysis.json + CSV

export { type NeuronLayer, NeuronLayerError, type NeuronLayerKind, resolveNeuronLayer, withNeuronZeroed } from '../models/neurons.ts';
export { additiveFamily, additiveSounds, probeToneFrequencies } from './additive-probe.ts';
export { type AnalysisFile, type GradientNeuron, toCsv, writeAnalysis } from './analysis-file.ts';
export { type AnalysisSummary, type AnalyzeRunOptions, type AnalyzeRunResult, analyzeRun } from './analyze-run.ts';
export { auroc, ratesAt } from './auroc.ts';
export { type Embedding, type EmbeddingMethod, type EmbeddingPoint, type EmbedOptions, embed, embedClips, penultimateFeatures } from './embedding.ts';
export { type GradientSignature, gradientSignature, tailRatio } from './gradient-signature.ts';
export { type GradientOptions, type LayerGradients, type NeuronGradientStats, neuronGradients } from './gradients.ts';
export * from './metrics.ts';
export { anomalyIndices, median, type NeuralCleanseOptions, type ReversedTrigger, reverseEngineerTriggers } from './neural-cleanse.ts';
export { checkLayers, defaultAnalysisLayers } from './neuron-layers.ts';
export { type Pca, pca } from './pca.ts';
export {
  type BankVerdict,
  bankVerdict,
  type ConformalScore,
  conformalScore,
  type FamilyResult,
  type FamilyScore,
  familyResult,
  type ProbeClips,
  type ProbeFamily,
  runProbeBank,
} from './probe-bank.ts';
export { AnalysisInputError, type AttackOf, attackOf, cleanFeatures, clipsForModel, defenderClips, triggeredFeatures, waveformsOf } from './run-data.ts';
export { balancedSubset, neuralCleanseBudget, type ScanClass, type ScanOptions, type ScanResult, scanModel } from './scan.ts';
export {
  checkReferences,
  defaultProbeFamilies,
  defenderProbeClips,
  describeShares,
  expandReferenceRuns,
  type ReferenceScanRunOptions,
  type ReferenceScanRunResult,
  type ReferenceShare,
  referenceScanRun,
  referenceShareOf,
  type ScanInputsOptions,
  type ScanInputsResult,
  type ScanRunOptions,
  type ScanRunResult,
  scanInputs,
  scanRun,
  uncalibratedStatement,
  verdictStatement,
  wavFiles,
} from './scan-run.ts';
export { type ClipStability, clipStabilities, type StabilityPerturbation, stabilityPerturbations, stabilityThreshold } from './stability.ts';
export { quantile, type StripOptions, stripEntropies, stripThreshold } from './strip.ts';
export { residualExcess, type SubspaceResiduals, subspaceFamily, subspaceResiduals } from './subspace-probe.ts';
export {
  excessOverReferences,
  type ProbeExcess,
  type ProbeRates,
  type ProbeTransform,
  probeRates,
  probeTransforms,
  ratesFamily,
  transformFamily,
} from './transform-probe.ts';
export { type TsneOptions, tsne } from './tsne.ts';
export { type LossChangeOptions, type LossChanges, lossChanges, type NeuronLossChange, type Zone, zoneCounts, zoneNames, zoneOf } from './zones.ts';
