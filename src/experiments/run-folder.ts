// What the attack, defend and train runs share about their run folders: the guard that never clobbers a
// finished run, and where their features are cached.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { defaultCacheDir } from './data-splits.ts';

export class RunFolderError extends Error {}

/** Refuses to clobber a finished run; clears a stale partial one unless resuming. */
export function prepareRunFolder(out: string, opts: { resume?: boolean; force?: boolean }): void {
  const finished = existsSync(path.join(out, 'model.json'));
  if (finished && !opts.force && !opts.resume) {
    throw new RunFolderError(`${out} already holds a finished run; choose another --out, or pass --force to replace it`);
  }
  if (opts.force && existsSync(out)) rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
}

/** The cache root of a run's `cacheDir` option: null is no cache, undefined the default one. */
export const cacheRootOf = (cacheDir: string | null | undefined): string | undefined => (cacheDir === null ? undefined : (cacheDir ?? defaultCacheDir()));

/** Where a run's features are cached (cacheRoot/features), or undefined for none. */
export function featureCacheOf(cacheDir: string | null | undefined): string | undefined {
  const root = cacheRootOf(cacheDir);
  return root ? path.join(root, 'features') : undefined;
}
