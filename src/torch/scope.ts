// Deterministic memory: tensors made inside tidy() are freed when it returns, except what it returns
// and what keep() marks. The JS garbage collector does not see native memory and does not run
// finalizers inside a synchronous training loop, so scopes, not GC, bound memory (specs/engine.md).
import { native } from './native.ts';
import type { Tensor } from './tensor.ts';

const scopeStack: Tensor[][] = [];

/**
 * Called by every new Tensor: the innermost open scope owns it. A tensor outside every scope is left to
 * dispose() or, as a last resort, the garbage collector, so V8 is told of its bytes; scoped ones are not
 * reported, since telling V8 of every activation kept its major GC running through training.
 */
export function track(t: Tensor): void {
  const scope = scopeStack[scopeStack.length - 1];
  if (scope) scope.push(t);
  else t.handle.reportToGc();
}

function collectReturned(value: unknown, into: Set<Tensor>, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 8) return;
  if (isTensor(value)) {
    into.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collectReturned(v, into, depth + 1);
    return;
  }
  if (value instanceof Map) {
    for (const v of value.values()) collectReturned(v, into, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectReturned(v, into, depth + 1);
  }
}

function isTensor(value: object): value is Tensor {
  return (value as { isTensorMarker?: boolean }).isTensorMarker === true;
}

/**
 * Runs fn; frees every tensor created inside, except those returned (in any nesting of arrays, Maps
 * and plain objects) and those passed to keep(). Returned tensors move to the enclosing scope.
 */
export function tidy<T>(fn: () => T): T {
  const scope: Tensor[] = [];
  scopeStack.push(scope);
  let result: T | undefined;
  let failed = true;
  try {
    result = fn();
    if (result instanceof Promise) {
      throw new Error('tidy() needs a synchronous function: a scope cannot be held across an await');
    }
    failed = false;
    return result;
  } finally {
    scopeStack.pop();
    const returned = new Set<Tensor>();
    if (!failed) collectReturned(result, returned);
    const parent = scopeStack[scopeStack.length - 1];
    for (const t of scope) {
      if (returned.has(t)) {
        if (parent) parent.push(t);
        else t.handle.reportToGc();
      } else if (!t.persistent) {
        t.dispose();
      }
    }
  }
}

/** Exempts t from every scope: it lives until dispose() (or, as a last resort, garbage collection). */
export function keep<T extends Tensor>(t: T): T {
  t.persistent = true;
  t.handle.reportToGc();
  return t;
}

/** Frees the given tensors (and tensors inside arrays/objects) now. Idempotent. */
export function dispose(...values: unknown[]): void {
  const found = new Set<Tensor>();
  for (const v of values) collectReturned(v, found);
  for (const t of found) t.dispose();
}

export interface MemoryInfo {
  /** tensors alive in the engine (every handle not yet freed) */
  liveTensors: number;
  /** their bytes (logical size; views of one storage count each) */
  liveBytes: number;
  peakBytes: number;
  /** freed blocks the caching CPU allocator holds for reuse (see native/src/allocator.cc) */
  cachedBytes: number;
  /** the cache's current cap (it grows for repeating work that outgrew it) */
  cacheCapBytes: number;
  /** large-block requests the cache could not serve since the process started: fresh memory the kernel faults in */
  cacheMisses: number;
  /** open tidy() scopes */
  scopeDepth: number;
}

export function memory(): MemoryInfo {
  const { capBytes, misses } = native.cacheStats();
  return { ...native.memory(), cachedBytes: native.cachedBytes(), cacheCapBytes: capBytes, cacheMisses: misses, scopeDepth: scopeStack.length };
}

/** Returns the caching CPU allocator's free blocks to the system. */
export function emptyCache(): void {
  native.emptyCache();
}

export function resetPeakMemory(): void {
  native.resetPeak();
}
