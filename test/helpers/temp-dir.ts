// A scratch folder for one describe block: made before its tests, removed after them.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';

/** Registers the before/after hooks in the calling describe; the returned function gives the folder once it exists. */
export function useTempDir(prefix: string): () => string {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), prefix));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return () => dir;
}
