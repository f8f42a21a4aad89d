// Shared by the PyTorch-parity tests of the layers: tensors stored in fixtures/layers/*.json as
// base64 little-endian bytes, and the comparison of outputs.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Module } from '../../src/nn/module.ts';
import { type Tensor, tensor, tidy } from '../../src/torch/index.ts';

export interface FixtureTensor {
  shape: number[];
  dtype: 'float32' | 'bool';
  data: string;
}

export function decode(t: FixtureTensor): Tensor {
  const bytes = Buffer.from(t.data, 'base64');
  if (t.dtype === 'bool') return tensor(new Uint8Array(bytes), t.shape, { dtype: 'bool' });
  return tensor(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), t.shape);
}

export function maxAbsDiff(actual: Tensor, expected: Tensor): number {
  assert.deepEqual(actual.shape, expected.shape);
  const a = actual.toArray();
  const e = expected.toArray();
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - e[i])), 0);
}

export function readLayerFixture<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`../../fixtures/layers/${name}.json`, import.meta.url), 'utf8')) as T;
}

/** The module's state-dict names and shapes equal PyTorch's, in order; then PyTorch's values are loaded. */
export function loadPyTorchState(m: Module, state: (FixtureTensor & { name: string })[]): void {
  assert.deepEqual(
    [...m.stateDict()].map(([name, t]) => [name, t.shape]),
    state.map((s) => [s.name, s.shape]),
  );
  tidy(() => m.loadStateDict(new Map(state.map((s) => [s.name, decode(s)]))));
}
