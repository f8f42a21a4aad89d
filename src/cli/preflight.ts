// Checks a command makes before it starts any work, so that a run never trains for an hour and then fails
// to write its result: the output can be written (its folder, or the nearest folder that exists, takes a
// file; it is not a file where a folder is meant; the disk has room), and the data folder exists and holds
// the words. Each failure is a usage error that names the thing and the fix.
import { existsSync, readdirSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from './output.ts';

/** What a run folder needs at least (weights, checkpoints, logs); a model run writes a few MB to a few tens. */
export const RUN_FOLDER_MIN_BYTES = 200 * 1024 * 1024;

/** The nearest folder of `target` (itself included) that exists. */
function nearestExisting(target: string): string {
  let dir = path.resolve(target);
  while (!existsSync(dir)) {
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return dir;
}

/** Throws unless a file can be created in `dir` (tried, then removed: permissions alone do not tell, e.g. /proc). */
function assertWritable(dir: string, flag: string, target: string): void {
  const probe = path.join(dir, `.kwshield-write-check-${process.pid}`);
  try {
    writeFileSync(probe, '');
    rmSync(probe, { force: true });
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new UsageError(`${flag} ${target}: cannot write in ${dir} (${reason}); choose a folder you can write to`);
  }
}

function assertRoom(dir: string, flag: string, target: string, bytes: number): void {
  const fs = statfsSync(dir);
  const free = Number(fs.bavail) * Number(fs.bsize);
  if (free < bytes) {
    const mb = (n: number) => `${Math.round(n / 1024 / 1024)} MB`;
    throw new UsageError(`${flag} ${target}: ${mb(free)} free on its disk, at least ${mb(bytes)} needed; free some space or choose another disk`);
  }
}

/** An output folder (a run folder, a results folder): not a file, writable, room on its disk. */
export function checkOutputFolder(target: string, flag = '--out', bytes = RUN_FOLDER_MIN_BYTES): void {
  const resolved = path.resolve(target);
  if (existsSync(resolved) && !statSync(resolved).isDirectory()) throw new UsageError(`${flag} ${target} is a file, not a folder; give a folder path`);
  const dir = nearestExisting(resolved);
  if (!statSync(dir).isDirectory()) throw new UsageError(`${flag} ${target}: ${dir} is a file, so no folder can be made under it; choose another path`);
  assertWritable(dir, flag, target);
  assertRoom(dir, flag, target, bytes);
}

/** An output file (a report, a manifest): not a folder, and its folder writable. */
export function checkOutputFile(target: string, flag = '--out', bytes = 10 * 1024 * 1024): void {
  const resolved = path.resolve(target);
  if (existsSync(resolved) && statSync(resolved).isDirectory()) throw new UsageError(`${flag} ${target} is a folder; give a file path`);
  const dir = nearestExisting(path.dirname(resolved));
  if (!statSync(dir).isDirectory()) throw new UsageError(`${flag} ${target}: ${dir} is a file, so the file cannot be made under it; choose another path`);
  assertWritable(dir, flag, target);
  assertRoom(dir, flag, target, bytes);
}

/** The word folders of a Speech Commands folder that hold at least one WAV clip. */
function wordFolders(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('_') && !e.name.startsWith('.'))
    .filter((e) => readdirSync(path.join(dir, e.name)).some((f) => f.toLowerCase().endsWith('.wav')))
    .map((e) => e.name);
}

/** A Speech Commands folder: it exists, and holds clips of the given words (or of two words at least). */
export function checkDataFolder(dir: string, flag = '--data', words?: readonly string[]): void {
  if (!existsSync(dir)) {
    throw new UsageError(`${flag} ${dir} does not exist; give a Speech Commands folder, or make one with: kwshield data synth --out ${dir}`);
  }
  if (!statSync(dir).isDirectory()) throw new UsageError(`${flag} ${dir} is a file; give a Speech Commands folder (one sub-folder of WAV clips per word)`);
  const found = wordFolders(dir);
  const missing = (words ?? []).filter((w) => !found.includes(w));
  if (missing.length) {
    throw new UsageError(`${flag} ${dir} has no clips of ${missing.map((w) => `'${w}'`).join(', ')}; the model's words need a sub-folder of WAV clips each`);
  }
  if (found.length < 2) {
    throw new UsageError(
      `${flag} ${dir} holds ${found.length ? `clips of one word only (${found[0]})` : 'no word folders with WAV clips'}; a Speech Commands folder has one sub-folder of WAV clips per word`,
    );
  }
}
