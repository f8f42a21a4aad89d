// Lock files that keep two processes (workers of one `grid run`, or runs on several machines sharing a
// work folder) off the same job. A lock is created atomically with its content: written to a temporary
// file and hard-linked to the lock's name, which fails if the name exists (link is atomic on local file
// systems and on NFS, unlike O_EXCL on old NFS clients). It names its holder (pid, hostname, start).
// A lock whose holder is a dead process on this host is stale and is taken over; a lock held on another
// host cannot be checked from here: it counts as stale once its holder has not refreshed it (heartbeat(),
// called from the holder's progress callbacks) for KWSHIELD_LOCK_STALE_MINUTES (default 60), which is what
// lets a Slurm task requeued on another node continue its shard on a shared work folder.
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface LockHolder {
  pid: number;
  hostname: string;
  /** when the lock was taken (ISO) */
  since: string;
  /** the holder's start time in clock ticks since boot (Linux /proc), so a reused pid is not mistaken for it */
  procStart?: number;
  /** what the lock is for (a job id and label) */
  purpose?: string;
}

export type LockAttempt = { acquired: true; release: () => void; tookOver?: LockHolder } | { acquired: false; holder: LockHolder | null };

/** Field 22 of /proc/<pid>/stat (start time), or undefined off Linux or when the process is gone. */
function procStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const value = Number(fields[19]);
    return Number.isFinite(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a holder on this host is still running (the same process, not a later one with its pid). */
export function holderAlive(h: LockHolder): boolean {
  try {
    process.kill(h.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (h.procStart !== undefined) {
    const now = procStart(h.pid);
    if (now !== undefined && now !== h.procStart) return false;
  }
  return true;
}

export function readHolder(file: string): LockHolder | null {
  try {
    const h = JSON.parse(readFileSync(file, 'utf8')) as LockHolder;
    return typeof h.pid === 'number' && typeof h.hostname === 'string' ? h : null;
  } catch {
    return null;
  }
}

/** How long a lock held on another host may go without a heartbeat before it counts as stale. */
export function remoteStaleMs(env: NodeJS.ProcessEnv = process.env): number {
  const minutes = Number(env.KWSHIELD_LOCK_STALE_MINUTES);
  return (Number.isFinite(minutes) && minutes > 0 ? minutes : 60) * 60_000;
}

const ageMs = (file: string): number => {
  try {
    return Date.now() - statSync(file).mtimeMs;
  } catch {
    return 0;
  }
};

/**
 * Whether the lock `file` (holder `h`) is stale: held by a dead process on this host, or on another host
 * and not refreshed for remoteStaleMs(), or unreadable and older than a minute (its writer died).
 */
export function isStale(file: string, h: LockHolder | null): boolean {
  if (!h) return ageMs(file) > 60_000;
  if (h.hostname === os.hostname()) return !holderAlive(h);
  return ageMs(file) > remoteStaleMs();
}

/** Refreshes a held lock's time stamp, telling other hosts its holder lives. */
export function heartbeat(file: string): void {
  try {
    const now = new Date();
    utimesSync(file, now, now);
  } catch {
    // gone (taken over as stale, or released): nothing to refresh
  }
}

/** Creates `file` holding `content`, atomically; false if it exists. */
function createExclusive(file: string, content: string): boolean {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  writeFileSync(tmp, content);
  try {
    linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    rmSync(tmp, { force: true });
  }
}

export function describeHolder(h: LockHolder | null): string {
  return h ? `pid ${h.pid} on ${h.hostname} since ${h.since}` : 'an unknown process';
}

/** Tries once to take the lock `file` for this process. */
export function tryLock(file: string, purpose?: string): LockAttempt {
  mkdirSync(path.dirname(file), { recursive: true });
  const me: LockHolder = { pid: process.pid, hostname: os.hostname(), since: new Date().toISOString(), procStart: procStart(process.pid), purpose };
  const content = `${JSON.stringify(me)}\n`;
  const release = () => {
    // Only our own lock: never delete one another process took over in the meantime.
    const h = readHolder(file);
    if (h && h.pid === me.pid && h.hostname === me.hostname && h.since === me.since) rmSync(file, { force: true });
  };
  if (createExclusive(file, content)) return { acquired: true, release };
  const holder = readHolder(file);
  if (!isStale(file, holder)) return { acquired: false, holder };
  // Take the stale lock over under a short-lived second lock, so that two processes that both found it
  // stale do not both delete it (the second would delete the first's new lock).
  const takeover = `${file}.takeover`;
  if (!createExclusive(takeover, content)) {
    const other = readHolder(takeover);
    if (isStale(takeover, other)) rmSync(takeover, { force: true });
    return { acquired: false, holder };
  }
  try {
    const again = readHolder(file);
    if (JSON.stringify(again) !== JSON.stringify(holder)) return { acquired: false, holder: again };
    // Move the stale lock aside (not unlink: a rename of a name we checked is one step) and create ours.
    const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      renameSync(file, aside);
      unlinkSync(aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (!createExclusive(file, content)) return { acquired: false, holder: readHolder(file) };
    return { acquired: true, release, ...(holder ? { tookOver: holder } : {}) };
  } finally {
    if (readHolder(takeover)?.pid === me.pid) rmSync(takeover, { force: true });
  }
}

/** Waits for the lock (polling), telling `onWait` once who holds it. */
export async function waitForLock(
  file: string,
  o: { purpose?: string; pollMs?: number; onWait?: (holder: LockHolder | null) => void; until?: () => boolean } = {},
): Promise<(LockAttempt & { acquired: true }) | null> {
  let told = false;
  for (;;) {
    const attempt = tryLock(file, o.purpose);
    if (attempt.acquired) return attempt;
    if (o.until?.()) return null;
    if (!told) {
      o.onWait?.(attempt.holder);
      told = true;
    }
    await new Promise((r) => setTimeout(r, o.pollMs ?? 2000));
  }
}
