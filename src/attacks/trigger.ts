// Building Trigger objects (the data layer's hook) from an attack's artifact, with a cache identity that
// covers everything the result depends on: attack, phase, options, seed, data and tensor contents.
import { createHash } from 'node:crypto';
import type { Trigger } from '../data/features.ts';
import type { Rng } from '../data/rng.ts';
import type { OptionSpecs, OptionsOf } from '../options/options.ts';
import type { Tensor } from '../torch/index.ts';
import type { AttackPhase, TriggerArtifact } from './types.ts';

export function artifactDigest(artifact: TriggerArtifact): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ attack: artifact.attack, options: artifact.options, seed: artifact.seed, frontEnd: artifact.frontEnd, data: artifact.data }));
  for (const [name, t] of [...artifact.tensors].sort(([a], [b]) => a.localeCompare(b))) {
    hash.update(name);
    hash.update(t.bytes());
  }
  return hash.digest('hex').slice(0, 16);
}

export function makeTrigger(
  artifact: TriggerArtifact,
  phase: AttackPhase,
  domain: Trigger['domain'],
  apply: (batch: Tensor, clipIndices: readonly number[], rng: Rng) => Tensor,
): Trigger {
  return { id: `${artifact.attack}:${phase}:${artifactDigest(artifact)}`, domain, apply: (batch, rng, clipIndices) => apply(batch, clipIndices, rng) };
}

/** The artifact's fields that every attack fills the same way. */
export function baseArtifact(attack: string, options: TriggerArtifact['options'], seed: number, frontEnd: string): TriggerArtifact {
  return { attack, version: 1, options, seed, frontEnd, data: {}, tensors: new Map() };
}

/**
 * An artifact's options typed by the attack's declaration: they were resolved against it when the
 * artifact was made (prepare), and a saved artifact is read back as it was written.
 */
export function artifactOptions<S extends OptionSpecs>(artifact: TriggerArtifact, _declared: S): OptionsOf<S> {
  return artifact.options as OptionsOf<S>;
}
