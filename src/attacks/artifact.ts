// A trigger artifact on disk: trigger.json (attack, options, seed, front-end, attack data) beside
// trigger.safetensors (its tensors, when it has any). Both are written atomically; reading validates
// every field so a hand-edited or truncated artifact gives an error that names the file.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { writeJsonAtomic } from '../data/atomic.ts';
import { dispose, keep, loadSafetensors, saveSafetensors, tidy } from '../torch/index.ts';
import { getAttack } from './registry.ts';
import type { PoisonPlan, TriggerArtifact } from './types.ts';

export class ArtifactError extends Error {}

export const artifactFiles = (dir: string) => ({
  json: path.join(dir, 'trigger.json'),
  tensors: path.join(dir, 'trigger.safetensors'),
  plan: path.join(dir, 'poison-plan.json'),
});

export function saveArtifact(dir: string, artifact: TriggerArtifact): void {
  const files = artifactFiles(dir);
  if (artifact.tensors.size) tidy(() => saveSafetensors(files.tensors, artifact.tensors, { attack: artifact.attack }));
  const { tensors, ...rest } = artifact;
  writeJsonAtomic(files.json, { format: 'kwshield-trigger', ...rest, tensors: [...tensors.keys()] });
}

/** Reads dir/trigger.json (+ trigger.safetensors); the tensors are kept until disposeArtifact. */
export function loadArtifact(dir: string): TriggerArtifact {
  const files = artifactFiles(dir);
  if (!existsSync(files.json)) throw new ArtifactError(`${files.json} not found: --attack-of must be a run folder made by kwshield attack`);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(files.json, 'utf8'));
  } catch (e) {
    throw new ArtifactError(`${files.json} is not valid JSON (${(e as Error).message})`);
  }
  if (raw.format !== 'kwshield-trigger' || raw.version !== 1)
    throw new ArtifactError(`${files.json}: not a kwshield trigger (format ${JSON.stringify(raw.format)})`);
  if (typeof raw.attack !== 'string') throw new ArtifactError(`${files.json}: "attack" must name an attack`);
  getAttack(raw.attack); // throws naming the known attacks
  for (const key of ['options', 'data'] as const) {
    if (typeof raw[key] !== 'object' || raw[key] === null) throw new ArtifactError(`${files.json}: "${key}" must be an object`);
  }
  if (!Number.isInteger(raw.seed)) throw new ArtifactError(`${files.json}: "seed" must be an integer`);
  if (typeof raw.frontEnd !== 'string') throw new ArtifactError(`${files.json}: "frontEnd" must name a front-end`);
  const names = Array.isArray(raw.tensors) ? (raw.tensors as unknown[]).map(String) : [];
  const tensors = new Map<string, ReturnType<typeof keep>>();
  if (names.length) {
    if (!existsSync(files.tensors)) throw new ArtifactError(`${files.tensors} not found, but ${files.json} lists tensors ${names.join(', ')}`);
    const loaded = loadSafetensors(files.tensors).tensors;
    for (const name of names) {
      const t = loaded.get(name);
      if (!t) {
        dispose([...loaded.values()]);
        throw new ArtifactError(`${files.tensors} has no tensor '${name}' (it has ${[...loaded.keys()].join(', ')})`);
      }
      tensors.set(name, keep(t));
    }
    for (const [name, t] of loaded) if (!tensors.has(name)) t.dispose();
  }
  return {
    attack: raw.attack,
    version: 1,
    options: raw.options as TriggerArtifact['options'],
    seed: raw.seed as number,
    frontEnd: raw.frontEnd,
    data: raw.data as Record<string, unknown>,
    tensors,
  };
}

export function disposeArtifact(artifact: TriggerArtifact): void {
  dispose([...artifact.tensors.values()]);
}

export function savePlan(dir: string, plan: PoisonPlan, clipFiles: readonly string[]): void {
  writeJsonAtomic(artifactFiles(dir).plan, { format: 'kwshield-poison-plan', ...plan, files: plan.indices.map((i) => clipFiles[i]) });
}

export function loadPlan(dir: string): PoisonPlan {
  const file = artifactFiles(dir).plan;
  if (!existsSync(file)) throw new ArtifactError(`${file} not found: not an attack run folder`);
  const raw = JSON.parse(readFileSync(file, 'utf8'));
  if (raw.format !== 'kwshield-poison-plan' || !Array.isArray(raw.indices)) throw new ArtifactError(`${file}: not a kwshield poison plan`);
  const { format: _format, files: _files, ...plan } = raw;
  return plan as PoisonPlan;
}
