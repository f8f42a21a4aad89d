// Finds a Python that imports torch and runs PyTorch benchmark scripts with it (shared/peers/torch_reference.py,
// bench/torch_models.py), so that the project's figures sit beside PyTorch's from the same machine and invocation.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ReferenceResult {
  python: string;
  /** case name -> ms_per_step, from the script's JSON lines */
  cases: Map<string, number>;
}

export type TorchRun = ReferenceResult | { skipped: string };

export const noTorchPython = 'no Python that imports torch (Debian: apt-get install -y python3-torch)';

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

/** bench/torch_models.py: PyTorch twins of the model zoo, timed as bench/models.ts times ours. */
export const torchModelsScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'torch_models.py');

/**
 * Runs `python script ...args` and collects the {"case", "ms_per_step"} JSON lines it prints. Pass `python`
 * when calling repeatedly: finding one imports torch, which takes a second or so.
 */
export function runTorchScript(script: string, args: string[], python: string | null = findTorchPython()): TorchRun {
  if (!python) return { skipped: noTorchPython };
  const run = spawnSync(python, [script, ...args], { encoding: 'utf8' });
  if (run.status !== 0) {
    const why = run.error?.message ?? (run.stderr ?? '').trim().split('\n').pop();
    return { skipped: `${path.basename(script)} failed: ${why}` };
  }
  const cases = new Map<string, number>();
  for (const line of run.stdout.split('\n')) {
    if (!line.trim().startsWith('{')) continue;
    const row = JSON.parse(line) as { case: string; ms_per_step: number };
    cases.set(row.case, row.ms_per_step);
  }
  return { python, cases };
}

export function runTorchReference(repoRoot: string, opts: { threads: number; steps: number; batch: number }): TorchRun {
  const script = referenceScript(repoRoot);
  if (!script) return { skipped: 'shared/peers/torch_reference.py not found beside the repository' };
  return runTorchScript(script, ['--threads', String(opts.threads), '--steps', String(opts.steps), '--batch', String(opts.batch)]);
}
