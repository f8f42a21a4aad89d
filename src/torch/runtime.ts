// Process-wide engine settings: threads, seeds, devices. Device handling lives here alone so that a
// CUDA libtorch ($LIBTORCH) works by changing one option.
import { availableParallelism } from 'node:os';
import { native } from './native.ts';

/** Intra-op threads libtorch uses (default: the machine's cores). */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`setNumThreads: expected a positive integer, got ${n}`);
  native.setNumThreads(n);
}

export const getNumThreads = (): number => native.getNumThreads();

/** Seeds libtorch's global generator: the same seed and thread count give the same numbers on CPU. */
export function manualSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0) throw new RangeError(`manualSeed: expected a non-negative integer, got ${seed}`);
  native.manualSeed(seed);
}

export type Device = 'cpu' | `cuda` | `cuda:${number}`;

/**
 * Resolves a device request: 'auto' picks CUDA when this libtorch has it, else CPU. Throws a clear
 * error when CUDA is asked for but missing.
 */
export function resolveDevice(request: Device | 'auto' = 'cpu'): Device {
  if (request === 'auto') return native.cudaAvailable() ? 'cuda:0' : 'cpu';
  if (request.startsWith('cuda') && !native.cudaAvailable()) {
    throw new Error(`device '${request}' requested but this libtorch has no CUDA; use 'cpu', or build against a CUDA libtorch with LIBTORCH=/path/to/libtorch`);
  }
  return request;
}

export const cudaAvailable = (): boolean => native.cudaAvailable();

let defaultThreadsApplied = false;
/** Applies the default thread count once, at load: $KWSHIELD_THREADS if set, else the machine's cores (libtorch and OpenBLAS alike). */
export function applyDefaultThreads(): void {
  if (defaultThreadsApplied) return;
  defaultThreadsApplied = true;
  const env = Number(process.env.KWSHIELD_THREADS);
  native.setNumThreads(Number.isInteger(env) && env > 0 ? env : availableParallelism());
}

applyDefaultThreads();
