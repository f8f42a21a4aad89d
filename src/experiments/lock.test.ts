// Job locks: one holder at a time, stale locks of dead local processes (and of remote holders silent for
// an hour) taken over (once, even when several processes race for them), live holders respected, and release never removing another's lock.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { heartbeat, readHolder, tryLock } from './lock.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'kws-lock-'));
const here = path.dirname(fileURLToPath(import.meta.url));

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('job locks', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('one holder at a time; release frees it', () => {
    const file = path.join(dir, 'a.lock');
    const first = tryLock(file, 'job a');
    assert.ok(first.acquired);
    const holder = readHolder(file);
    assert.equal(holder?.pid, process.pid);
    assert.equal(holder?.hostname, os.hostname());
    assert.equal(holder?.purpose, 'job a');
    const second = tryLock(file);
    assert.equal(second.acquired, false);
    assert.equal(!second.acquired && second.holder?.pid, process.pid);
    if (first.acquired) first.release();
    assert.ok(!existsSync(file));
    const third = tryLock(file);
    assert.ok(third.acquired);
    if (third.acquired) third.release();
  });

  it("takes over a dead local process's lock, respects live and remote holders", () => {
    const stale = path.join(dir, 'stale.lock');
    const dead = deadPid();
    writeFileSync(stale, JSON.stringify({ pid: dead, hostname: os.hostname(), since: '2020-01-01T00:00:00Z' }));
    const taken = tryLock(stale);
    assert.ok(taken.acquired, 'the stale lock is taken over');
    assert.equal(taken.acquired && taken.tookOver?.pid, dead);
    assert.equal(readHolder(stale)?.pid, process.pid);
    if (taken.acquired) taken.release();

    const remote = path.join(dir, 'remote.lock');
    writeFileSync(remote, JSON.stringify({ pid: dead, hostname: `not-${os.hostname()}`, since: '2020-01-01T00:00:00Z' }));
    assert.equal(tryLock(remote).acquired, false, 'a lock held on another host with a recent heartbeat is not taken over');
    const hoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(remote, hoursAgo, hoursAgo);
    const silent = tryLock(remote);
    assert.ok(silent.acquired, 'a lock of another host without a heartbeat for an hour is stale');
    if (silent.acquired) {
      utimesSync(remote, hoursAgo, hoursAgo);
      heartbeat(remote);
      assert.ok(Date.now() - statSync(remote).mtimeMs < 60_000, 'heartbeat refreshes it');
      silent.release();
    }

    const live = path.join(dir, 'live.lock');
    writeFileSync(live, JSON.stringify({ pid: process.ppid, hostname: os.hostname(), since: '2020-01-01T00:00:00Z' }));
    assert.equal(tryLock(live).acquired, false, 'a live holder keeps its lock');

    const reused = path.join(dir, 'reused.lock');
    // Our own pid with another start time: the holder died and its pid was reused by us.
    writeFileSync(reused, JSON.stringify({ pid: process.ppid, hostname: os.hostname(), since: '2020-01-01T00:00:00Z', procStart: 1 }));
    assert.equal(tryLock(reused).acquired, os.platform() === 'linux', 'a reused pid is told apart by its start time (Linux)');
  });

  it('release does not remove a lock another process took over', () => {
    const file = path.join(dir, 'b.lock');
    const mine = tryLock(file);
    assert.ok(mine.acquired);
    writeFileSync(file, JSON.stringify({ pid: 1, hostname: os.hostname(), since: 'later' }));
    if (mine.acquired) mine.release();
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).pid, 1);
  });

  it('of several processes racing for one stale lock, exactly one wins', async () => {
    const file = path.join(dir, 'race.lock');
    writeFileSync(file, JSON.stringify({ pid: deadPid(), hostname: os.hostname(), since: '2020-01-01T00:00:00Z' }));
    const script = `import { tryLock } from ${JSON.stringify(path.join(here, 'lock.ts'))};
      const at = Number(process.argv[1]); while (Date.now() < at) {}
      process.stdout.write(tryLock(${JSON.stringify(file)}).acquired ? 'won' : 'lost');
      setTimeout(() => {}, 4000);`;
    const at = Date.now() + 3000;
    const runs = Array.from(
      { length: 4 },
      () =>
        new Promise<string>((resolve) => {
          const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, String(at)], { cwd: path.join(here, '../..') });
          let out = '';
          child.stdout.on('data', (d) => {
            out += d;
          });
          child.on('exit', () => resolve(out));
        }),
    );
    const outcomes = await Promise.all(runs);
    assert.equal(outcomes.filter((o) => o === 'won').length, 1, outcomes.join(' '));
  });
});
