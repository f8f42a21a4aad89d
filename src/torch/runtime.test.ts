import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Loads the engine in a fresh process (settings apply at load) and prints what it reports. */
function engineSettings(env: Record<string, string>): { threads: number; ompWaitPolicy: string } {
  const script = `import { getNumThreads } from ${JSON.stringify(path.join(here, 'index.ts'))};
    console.log(JSON.stringify({ threads: getNumThreads(), ompWaitPolicy: process.env.OMP_WAIT_POLICY }));`;
  const childEnv = { ...process.env };
  delete childEnv.OMP_WAIT_POLICY;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...childEnv, ...env },
  });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout.trim().split('\n').pop() as string);
}

describe('engine settings at load', () => {
  it('takes the thread count from KWSHIELD_THREADS', () => {
    assert.equal(engineSettings({ KWSHIELD_THREADS: '1' }).threads, 1);
  });

  it('makes OpenMP wait passively unless the user chose a policy', () => {
    assert.equal(engineSettings({}).ompWaitPolicy, 'passive');
    assert.equal(engineSettings({ OMP_WAIT_POLICY: 'active' }).ompWaitPolicy, 'active');
  });
});
