// Finds a Python that imports torch and runs shared/peers/torch_reference.py with it, so that the
// project's figures sit beside PyTorch's from the same machine and the same invocation.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

export interface ReferenceResult {
  python: string;
  cases: Map<string, number>;
}

/** Debian installs python3-torch for /usr/bin/python3; a pyenv/conda python3 earlier on PATH may not see it. */
export function findTorchPython(): string | null {
  const candidates = [process.env.KWSHIELD_TORCH_PYTHON, '/usr/bin/python3', 'python3'].filter(Boolean) as string[];
  for (const python of candidates) {
    const probe = spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' });
    if (probe.status === 0) return python;
  }
  return null;
}

export function referenceScript(repoRoot: string): string | null {
  const script = path.resolve(repoRoot, '..', 'shared', 'peers', 'torch_reference.py');
  return existsSync(script) ? script : null;
}

export function runTorchReference(repoRoot: string, opts: { threads: number; steps: number; batch: number }): ReferenceResult | { skipped: string } {
  const python = findTorchPython();
  if (!python) return { skipped: 'no Python that imports torch (Debian: apt-get install -y python3-torch)' };
  const script = referenceScript(repoRoot);
  if (!script) return { skipped: 'shared/peers/torch_reference.py not found beside the repository' };
  const run = spawnSync(python, [script, '--threads', String(opts.threads), '--steps', String(opts.steps), '--batch', String(opts.batch)], {
    encoding: 'utf8',
  });
  if (run.status !== 0) return { skipped: `torch reference failed: ${run.stderr.trim().split('\n').pop()}` };
  const cases = new Map<string, number>();
  for (const line of run.stdout.split('\n')) {
    if (!line.trim().startsWith('{')) continue;
    const row = JSON.parse(line) as { case: string; ms_per_step: number };
    cases.set(row.case, row.ms_per_step);
  }
  return { python, cases };
}
