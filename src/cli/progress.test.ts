import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createProgress, formatSeconds, trainingEta } from './progress.ts';

/** A non-terminal stream that keeps what is written. */
function logStream(): { lines: string[]; stream: NodeJS.WriteStream } {
  const lines: string[] = [];
  const stream = { isTTY: false, write: (s: string) => lines.push(s.trim()) > 0 } as unknown as NodeJS.WriteStream;
  return { lines, stream };
}

describe('progress', () => {
  it('measures the ETA from the first update, not from creation', async () => {
    const { lines, stream } = logStream();
    const progress = createProgress('epoch 1/3', 1000, { stream, intervalMs: 0 });
    await new Promise((resolve) => setTimeout(resolve, 30));
    progress.update(1);
    await new Promise((resolve) => setTimeout(resolve, 40));
    progress.update(2);
    assert.match(lines[0], /^epoch 1\/3: 1\/1000 +eta \?$/);
    // ~40 ms a unit for 998 units: tens of seconds, never the "0s" that counting from creation gave.
    const eta = /eta (\d+)s$/.exec(lines[1]);
    assert.ok(eta && Number(eta[1]) >= 20, lines[1]);
  });

  it('leaves no line for work shorter than its interval, and logs long work and its end', async () => {
    const { lines, stream } = logStream();
    const quick = createProgress('gnft', 3, { stream, intervalMs: 60_000 });
    for (let i = 1; i <= 3; i++) quick.update(i);
    quick.finish();
    assert.deepEqual(lines, []);
    const long = createProgress('synth', 2, { stream, intervalMs: 20 });
    await new Promise((resolve) => setTimeout(resolve, 30));
    long.update(1);
    long.update(2);
    long.finish('2 clips');
    assert.equal(lines.length, 2);
    assert.match(lines[0], /^synth: 1\/2 /);
    assert.match(lines[1], /^synth: done in [\d.]+s \(2 clips\)$/);
  });

  it('formats durations and the remaining training time', () => {
    assert.equal(formatSeconds(42), '42s');
    assert.equal(formatSeconds(210), '3.5m');
    assert.equal(formatSeconds(7200), '2.0h');
    assert.equal(trainingEta([], 5), '?');
    assert.equal(trainingEta([10, 20], 4), '60s');
  });
});
