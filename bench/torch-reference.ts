// Finds a Python that imports torch and runs PyTorch benchmark scripts with it (shared/peers/torch_reference.py,
// bench/torch_models.py), so that the project's figures sit beside PyTorch's from the same machine and invocation.
//
// PyTorch is run in more than one configuration (TorchConfig), because its default is not what a speed-minded
// user runs: on these VMs glibc hands freed activation memory back to the OS on every step, and a PyTorch
// training step spends most of its time in page faults unless glibc is told to keep it (or jemalloc is
// preloaded). "At its best" is the fastest of the tuned configurations timed, case by case; "default" is PyTorch as
// installed (glibc defaults, NCHW layout) and stays as a second column.
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

export type TorchLayout = 'channels_last' | 'contiguous';

/** One way of running PyTorch: a memory layout and the environment its process gets. */
export interface TorchConfig {
  name: string;
  layout: TorchLayout;
  env: Record<string, string>;
}

/** glibc told to keep freed memory (the values shared/peers/torch_reference.py documents). */
export const glibcKeepsMemory = {
  MALLOC_MMAP_THRESHOLD_: '4294967296',
  MALLOC_TRIM_THRESHOLD_: '4294967296',
  MALLOC_TOP_PAD_: '1073741824',
};

const jemallocPaths = ['/usr/lib/x86_64-linux-gnu/libjemalloc.so.2', '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2'];

/** PyTorch as installed: glibc's defaults, NCHW. */
export const torchDefault: TorchConfig = { name: 'default', layout: 'contiguous', env: {} };

export const torchAllocators = ['glibc-keep', 'jemalloc'] as const;
export type TorchAllocator = (typeof torchAllocators)[number];

/**
 * The tuned configurations "at its best" takes the fastest of, by allocator: glibc keeping memory, and
 * jemalloc when installed. Default glibc-keep alone: on the 2-core VM (2026-12-02) Debian's jemalloc 5.3 ran
 * the ResNet steps several times slower than glibc-keep (see measured/speed), so timing it is opt-in.
 */
export function tunedTorchConfigs(layout: TorchLayout = 'channels_last', allocators: readonly string[] = ['glibc-keep']): TorchConfig[] {
  const configs: TorchConfig[] = [];
  for (const allocator of allocators) {
    if (allocator === 'glibc-keep') configs.push({ name: 'glibc-keep', layout, env: glibcKeepsMemory });
    else if (allocator === 'jemalloc') {
      const jemalloc = jemallocPaths.find((p) => existsSync(p));
      if (jemalloc) configs.push({ name: 'jemalloc', layout, env: { LD_PRELOAD: jemalloc } });
      else console.error('jemalloc not installed (apt-get install -y libjemalloc2): PyTorch runs with glibc-keep only');
    } else throw new Error(`unknown PyTorch allocator '${allocator}': use ${torchAllocators.join(', ')} (comma-separated)`);
  }
  return configs;
}

/** Environment for a PyTorch child: ours, minus any malloc tuning, plus the configuration's. */
export function childEnv(config: TorchConfig): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of [...Object.keys(glibcKeepsMemory), 'LD_PRELOAD']) delete env[key];
  return { ...env, ...config.env };
}

/**
 * Runs `python script ...args` and collects the {"case", "ms_per_step"} JSON lines it prints. Pass `python`
 * when calling repeatedly: finding one imports torch, which takes a second or so.
 */
export function runTorchScript(script: string, args: string[], python: string | null = findTorchPython(), config: TorchConfig = torchDefault): TorchRun {
  if (!python) return { skipped: noTorchPython };
  const run = spawnSync(python, [script, ...args], { encoding: 'utf8', env: childEnv(config) });
  if (run.status !== 0) {
    const why = run.error?.message ?? (run.stderr ?? '').trim().split('\n').pop();
    return { skipped: `${path.basename(script)} (${config.name}) failed: ${why}` };
  }
  const cases = new Map<string, number>();
  for (const line of run.stdout.split('\n')) {
    if (!line.trim().startsWith('{')) continue;
    const row = JSON.parse(line) as { case: string; ms_per_step: number };
    cases.set(row.case, row.ms_per_step);
  }
  return { python, cases };
}

/** The shared reference script's arguments for a configuration. */
export function referenceArgs(opts: { threads: number; steps: number; batch: number }, config: TorchConfig): string[] {
  const args = ['--threads', String(opts.threads), '--steps', String(opts.steps), '--batch', String(opts.batch)];
  return config.layout === 'channels_last' ? [...args, '--channels-last'] : args;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Timings gathered over rounds, per case and per configuration. Rounds alternate ours and PyTorch so that
 * a noisy neighbour on the VM slows both; the median of each side is what gets compared.
 */
export class RoundTimes {
  private readonly times = new Map<string, Map<string, number[]>>();

  add(config: string, cases: Map<string, number>): void {
    const byCase = this.times.get(config) ?? new Map<string, number[]>();
    this.times.set(config, byCase);
    for (const [name, ms] of cases) byCase.set(name, [...(byCase.get(name) ?? []), ms]);
  }

  /** Median over rounds of one configuration and case, or null when never measured. */
  median(config: string, name: string): number | null {
    const values = this.times.get(config)?.get(name);
    return values?.length ? median(values) : null;
  }

  /** The fastest configuration's median among `configs` for a case. */
  best(configs: string[], name: string): { ms: number; config: string } | null {
    let best: { ms: number; config: string } | null = null;
    for (const config of configs) {
      const ms = this.median(config, name);
      if (ms !== null && (!best || ms < best.ms)) best = { ms, config };
    }
    return best;
  }
}
