// A run folder that holds the user's own model (DESIGN.md "Models: built-in and the user's own"): model.pt,
// the TorchScript archive (kwshield import copies it in; defend writes the purified one), beside model.json
// and model.safetensors (the archive's parameters and buffers under its own names, for reading without
// PyTorch). checkpoint.ts's loadModel/saveModel come here for a manifest whose model is 'torchscript', so
// every command that loads a run loads such a model the same way.
//
// Security: the archive is code (its forward is a program). loadModel refuses a model.pt whose sha256 is
// not the one model.json recorded when kwshield wrote it, so a run folder cannot be made to run other code
// by swapping the file.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { getFrontEnd } from '../audio/frontends.ts';
import type { ModelManifest } from './checkpoint.ts';
import type { KwsModel, ModelSpec } from './registry.ts';
import { type BatchNormMode, loadTorchScriptModel, TorchScriptModel } from './torchscript.ts';

/** model.json's `model` for a TorchScript run. */
export const TORCHSCRIPT_MODEL = 'torchscript';
/** The archive's file name in a run folder. */
export const ARCHIVE_FILE = 'model.pt';

/** model.json's `torchscript` section. */
export interface TorchScriptManifest {
  /** the archive in the run folder (model.pt) */
  archive: string;
  /** sha256 of that file as kwshield wrote it */
  sha256: string;
  /** the file the user imported (absolute) and its sha256 then */
  source: string;
  sourceSha256: string;
  /** how its BatchNorm layers answer train()/eval() (torchscript.ts batchNormMode) */
  batchNorm: BatchNormMode;
  /** the archive's conv/Linear neuron layers (classifier excluded), its classifier, its BatchNorm layers */
  neuronLayers: string[];
  classifier: string | null;
  batchNorms: string[];
  parameters: number;
}

export const sha256Of = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Why model.json's torchscript section cannot be used, or null. */
export function torchScriptManifestProblem(m: Partial<ModelManifest>): string | null {
  const t = m.torchscript as Partial<TorchScriptManifest> | undefined;
  if (!t || typeof t !== 'object') return `a model of kind 'torchscript' needs a "torchscript" section (archive, sha256); re-import it with kwshield import`;
  if (typeof t.archive !== 'string' || t.archive.includes('/') || t.archive.includes('\\'))
    return `"torchscript.archive" must name a file in the run folder (model.pt), got ${JSON.stringify(t.archive)}`;
  if (typeof t.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(t.sha256)) return '"torchscript.sha256" must be the archive\'s sha256 (64 hex digits)';
  if (typeof m.frontEnd !== 'string') return '"frontEnd" must name the input the model takes (waveform-16k-1s or a front-end)';
  try {
    getFrontEnd(m.frontEnd);
  } catch (e) {
    return `"frontEnd": ${(e as Error).message}`;
  }
  return null;
}

/**
 * A registry-like spec for a TorchScript run, so code that asks a run's spec (neuron layers, input kind)
 * works unchanged. It cannot build a model: the model is its archive.
 */
export function torchScriptSpec(manifest: ModelManifest): ModelSpec<object> {
  const frontEnd = getFrontEnd(manifest.frontEnd);
  return {
    name: TORCHSCRIPT_MODEL,
    description: `the user's own model, a TorchScript archive (${manifest.torchscript?.source ?? ARCHIVE_FILE})`,
    frontEnd: frontEnd.name,
    inputShape: [...manifest.inputShape],
    inputKind: frontEnd.outputShape.length === 1 ? 'waveform' : 'spectral',
    inputConfig: () => ({}),
    defaults: {},
    build: () => {
      throw new Error('a TorchScript model is loaded from its archive (kwshield import), not built');
    },
    neuronLayers: (model: KwsModel) => (model as TorchScriptModel).neuronLayers(),
  };
}

/** Loads model.pt of a TorchScript run (eval mode), after checking it is the file model.json recorded. */
export function loadTorchScriptRun(dir: string, manifest: ModelManifest): TorchScriptModel {
  const t = manifest.torchscript as TorchScriptManifest;
  const file = path.join(dir, t.archive);
  if (!existsSync(file)) throw new Error(`${file} not found: the run folder ${dir} lost its TorchScript archive; re-import the model with kwshield import`);
  const sha = sha256Of(file);
  if (sha !== t.sha256) {
    throw new Error(
      `${file} is not the archive kwshield wrote (sha256 ${sha.slice(0, 12)}..., model.json records ${t.sha256.slice(0, 12)}...); an archive is code, so kwshield runs only the recorded one: re-import the model with kwshield import`,
    );
  }
  return loadTorchScriptModel(file);
}

/** Writes the archive with the model's current parameters and buffers as model.pt; returns its sha256. */
export function saveTorchScriptArchive(dir: string, model: KwsModel): string {
  if (!(model instanceof TorchScriptModel)) throw new Error("a run of kind 'torchscript' holds a TorchScript model; this one is a built-in model");
  const file = path.join(dir, ARCHIVE_FILE);
  model.save(file);
  return sha256Of(file);
}
