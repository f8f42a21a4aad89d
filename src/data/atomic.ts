// Nothing is half-written (specs/data.md): files and whole folders are built under a temporary name beside
// their destination and renamed into place, so a crash leaves either the old result or the new one.
import { randomBytes } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Writes `value` as pretty JSON to `file` through a temporary file beside it and a rename (synchronous). */
export function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/** 'missing', 'empty' (an empty folder), 'nonEmpty', or 'file' (something that is not a folder). */
export async function folderState(dir: string): Promise<'missing' | 'empty' | 'nonEmpty' | 'file'> {
  try {
    const info = await stat(dir);
    if (!info.isDirectory()) return 'file';
    return (await readdir(dir)).length === 0 ? 'empty' : 'nonEmpty';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw err;
  }
}

/**
 * Moves a finished folder `from` to `to`. An existing empty `to` is replaced; a non-empty one only with
 * `force`, and then it is moved aside first and deleted only after the new folder is in place.
 */
export async function replaceFolder(from: string, to: string, force: boolean): Promise<void> {
  const state = await folderState(to);
  if (state === 'file') throw new Error(`${to} exists and is not a folder`);
  if (state === 'nonEmpty' && !force) throw new Error(`${to} exists and is not empty (pass force to overwrite it)`);
  if (state === 'empty') await rm(to, { recursive: true });
  if (state !== 'nonEmpty') {
    await rename(from, to);
    return;
  }
  const aside = `${to}.old-${process.pid}-${randomBytes(4).toString('hex')}`;
  await rename(to, aside);
  try {
    await rename(from, to);
  } catch (err) {
    await rename(aside, to).catch(() => {});
    throw err;
  }
  await rm(aside, { recursive: true, force: true });
}
