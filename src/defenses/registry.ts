// The defense registry: each defense file registers its spec on import (src/defenses/index.ts imports them all).
import type { DefenseSpec } from './types.ts';

const specs = new Map<string, DefenseSpec>();

export function registerDefense(spec: DefenseSpec): void {
  if (specs.has(spec.name)) throw new Error(`defense '${spec.name}' is registered twice`);
  specs.set(spec.name, spec);
}

export class UnknownDefenseError extends Error {}

export function getDefense(name: string): DefenseSpec {
  const spec = specs.get(name);
  if (!spec) throw new UnknownDefenseError(`unknown defense '${name}'; available: ${[...specs.keys()].join(', ')}`);
  return spec;
}

export const defenseNames = (): string[] => [...specs.keys()];
