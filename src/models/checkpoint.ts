// A model on disk: model.safetensors (PyTorch-style names) beside model.json, which says how to
// rebuild it (registry name, configuration, front-end, classes) without knowing how it was made.
// A run of the user's own model (model 'torchscript') also holds model.pt, its TorchScript archive, and
// loads from that (torchscript-run.ts); for everything above this file it is a KwsModel like the others.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { writeJsonAtomic } from '../data/atomic.ts';
import { loadSafetensors, saveSafetensors, tidy } from '../torch/index.ts';
// From the zoo's index, so that loading a model registers every family first.
import { getModelSpec, type KwsModel, type ModelSpec, modelNames, withLayout } from './index.ts';
import {
  loadTorchScriptRun,
  saveTorchScriptArchive,
  TORCHSCRIPT_MODEL,
  type TorchScriptManifest,
  torchScriptManifestProblem,
  torchScriptSpec,
} from './torchscript-run.ts';

export interface ModelManifest {
  format: 'kwshield-model';
  version: 1;
  /** registry name, e.g. 'resnet'; 'torchscript' for the user's own model */
  model: string;
  config: Record<string, unknown>;
  /** the front-end the model reads; for a TorchScript model the input it takes (waveform-16k-1s: the raw clip) */
  frontEnd: string;
  inputShape: number[];
  classes: string[];
  /** how it was made: data, recipe, seed, dates, training record summary */
  provenance?: Record<string, unknown>;
  /** the archive of a 'torchscript' model (model.pt), its sha256 and where it came from */
  torchscript?: TorchScriptManifest;
}

export class ModelFileError extends Error {}

/** Writes model.safetensors (and model.pt for a TorchScript model), then model.json, each atomically. */
export function saveModel(dir: string, model: KwsModel, manifest: Omit<ModelManifest, 'format' | 'version'>): void {
  tidy(() => saveSafetensors(path.join(dir, 'model.safetensors'), model.stateDict(), { model: manifest.model }));
  let written = manifest;
  if (manifest.model === TORCHSCRIPT_MODEL) {
    if (!manifest.torchscript) throw new ModelFileError("a 'torchscript' model's manifest needs its torchscript section");
    written = { ...manifest, torchscript: { ...manifest.torchscript, archive: 'model.pt', sha256: saveTorchScriptArchive(dir, model) } };
  }
  writeJsonAtomic(path.join(dir, 'model.json'), { format: 'kwshield-model', version: 1, ...written });
}

export function readManifest(dir: string): ModelManifest {
  const file = path.join(dir, 'model.json');
  if (!existsSync(file)) throw new ModelFileError(`${file} not found: --model must be a run folder made by kwshield train/attack/defend/import`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ModelFileError(`${file} is not valid JSON (${(e as Error).message})`);
  }
  const m = raw as Partial<ModelManifest>;
  if (m.format !== 'kwshield-model') throw new ModelFileError(`${file}: not a kwshield model manifest (format is ${JSON.stringify(m.format)})`);
  if (m.model === TORCHSCRIPT_MODEL) {
    const problem = torchScriptManifestProblem(m);
    if (problem) throw new ModelFileError(`${file}: ${problem}`);
  } else if (typeof m.model !== 'string' || !modelNames().includes(m.model)) {
    throw new ModelFileError(`${file}: unknown model ${JSON.stringify(m.model)}; known models: ${modelNames().join(', ')}, ${TORCHSCRIPT_MODEL}`);
  }
  if (!Array.isArray(m.classes) || m.classes.length < 2 || !m.classes.every((c) => typeof c === 'string')) {
    throw new ModelFileError(`${file}: "classes" must list at least two class names`);
  }
  if (typeof m.config !== 'object' || m.config === null) throw new ModelFileError(`${file}: "config" must be an object`);
  return m as ModelManifest;
}

/** Rebuilds the model from model.json and loads model.safetensors into it (eval mode); a TorchScript run loads model.pt. */
export function loadModel(dir: string): { model: KwsModel; manifest: ModelManifest; spec: ModelSpec<object> } {
  const manifest = readManifest(dir);
  if (manifest.model === TORCHSCRIPT_MODEL) {
    try {
      return { model: loadTorchScriptRun(dir, manifest), manifest, spec: torchScriptSpec(manifest) };
    } catch (e) {
      throw new ModelFileError((e as Error).message);
    }
  }
  const spec = getModelSpec(manifest.model);
  const model = withLayout(spec.build({ ...spec.defaults, ...manifest.config, classes: manifest.classes.length }), 'channelsLast');
  const weights = path.join(dir, 'model.safetensors');
  try {
    tidy(() => model.loadStateDict(loadSafetensors(weights).tensors));
  } catch (e) {
    model.dispose();
    throw new ModelFileError(`${weights}: ${(e as Error).message}`);
  }
  return { model: model.eval(), manifest, spec };
}
