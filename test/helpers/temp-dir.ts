// A scratch folder for one describe block: made before its tests, removed after them.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';

/** Registers the before/after hooks in the calling describe; `made` gets the folder once it exists. */
export function useTempDir(prefix: string, made: (dir: string) => void): void {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), prefix));
    made(dir);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
}
