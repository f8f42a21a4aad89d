// The attack registry: each attack folder registers its spec on import (src/attacks/index.ts imports them all).
import type { AttackSpec } from './types.ts';

const specs = new Map<string, AttackSpec>();

export function registerAttack(spec: AttackSpec): void {
  if (specs.has(spec.name)) throw new Error(`attack '${spec.name}' is registered twice`);
  specs.set(spec.name, spec);
}

export class UnknownAttackError extends Error {}

export function getAttack(name: string): AttackSpec {
  const spec = specs.get(name);
  if (!spec) throw new UnknownAttackError(`unknown attack '${name}'; available: ${[...specs.keys()].join(', ')}`);
  return spec;
}

export const attackNames = (): string[] => [...specs.keys()];

/** The registered attacks with what a user needs to pick one. */
export function listAttacks(): { name: string; description: string; domain: string; labelMode: string; substitution?: string }[] {
  return [...specs.values()].map((s) => ({ name: s.name, description: s.description, domain: s.domain, labelMode: s.labelMode, substitution: s.substitution }));
}
