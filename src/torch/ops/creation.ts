// Tensor creation: from JS data, constants, ranges and random numbers.
import { type DType, dtypeCode } from '../dtype.ts';
import { native } from '../native.ts';
import { Tensor } from '../tensor.ts';
import { call } from './dispatch.ts';

export interface CreateOptions {
  dtype?: DType;
  /** 'cpu' (default) or 'cuda:0' etc.; see device.ts */
  device?: string;
  requiresGrad?: boolean;
}

type NumericArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Int16Array | Int8Array | Uint8Array;

function finish(t: Tensor, opts: CreateOptions | undefined): Tensor {
  if (opts?.requiresGrad) t.requiresGrad = true;
  return t;
}

function defaultDtype(data: NumericArray | number[] | boolean[]): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array) return 'uint8';
  return typeof data[0] === 'boolean' ? 'bool' : 'float32';
}

/**
 * A tensor holding a copy of `data` with the given shape (default: 1-D). Plain number arrays become
 * float32 unless `dtype` says otherwise; typed arrays keep their type.
 */
export function tensor(data: NumericArray | number[] | boolean[], shape?: number[], opts?: CreateOptions): Tensor {
  const dtype = opts?.dtype ?? defaultDtype(data);
  const dims = shape ?? [data.length];
  let array: NumericArray;
  if (Array.isArray(data)) {
    const values = (data as (number | boolean)[]).map(Number);
    array = dtype === 'float64' ? new Float64Array(values) : dtype === 'int64' || dtype === 'int32' ? new Int32Array(values) : new Float32Array(values);
  } else {
    array = data;
  }
  const t = new Tensor(native.fromTypedArray(array, dims, dtypeCode(dtype), opts?.device));
  return finish(t, opts);
}

/** A 0-dimensional tensor. */
export function scalarTensor(value: number, opts?: CreateOptions): Tensor {
  return finish(call('aten::scalar_tensor', '', [value, dtypeCode(opts?.dtype ?? 'float32'), undefined, opts?.device]), opts);
}

function factory(name: string, shape: number[], opts?: CreateOptions, overload = ''): Tensor {
  return finish(call(name, overload, [shape, opts?.dtype ? dtypeCode(opts.dtype) : undefined, undefined, opts?.device]), opts);
}

export const zeros = (shape: number[], opts?: CreateOptions) => factory('aten::zeros', shape, opts);
export const ones = (shape: number[], opts?: CreateOptions) => factory('aten::ones', shape, opts);
export const empty = (shape: number[], opts?: CreateOptions) => factory('aten::empty', shape, opts, 'memory_format');
/** Standard normal samples (uses the global generator: see manualSeed). */
export const randn = (shape: number[], opts?: CreateOptions) => factory('aten::randn', shape, opts);
/** Uniform samples in [0, 1). */
export const rand = (shape: number[], opts?: CreateOptions) => factory('aten::rand', shape, opts);

export function full(shape: number[], value: number, opts?: CreateOptions): Tensor {
  return finish(call('aten::full', '', [shape, value, opts?.dtype ? dtypeCode(opts.dtype) : undefined, undefined, opts?.device]), opts);
}

/** Integers uniform in [low, high). */
export function randint(low: number, high: number, shape: number[], opts?: CreateOptions): Tensor {
  return finish(call('aten::randint', 'low', [low, high, shape, dtypeCode(opts?.dtype ?? 'int64'), undefined, opts?.device]), opts);
}

/** A random permutation of 0..n-1 (int64). */
export function randperm(n: number, opts?: CreateOptions): Tensor {
  return call('aten::randperm', '', [n, dtypeCode(opts?.dtype ?? 'int64'), undefined, opts?.device]);
}

export function arange(start: number, end?: number, step = 1, opts?: CreateOptions): Tensor {
  const [from, to] = end === undefined ? [0, start] : [start, end];
  return finish(call('aten::arange', 'start_step', [from, to, step, opts?.dtype ? dtypeCode(opts.dtype) : undefined, undefined, opts?.device]), opts);
}

export function linspace(start: number, end: number, steps: number, opts?: CreateOptions): Tensor {
  return finish(call('aten::linspace', '', [start, end, steps, opts?.dtype ? dtypeCode(opts.dtype) : undefined, undefined, opts?.device]), opts);
}

export function eye(n: number, opts?: CreateOptions): Tensor {
  return finish(call('aten::eye', '', [n, opts?.dtype ? dtypeCode(opts.dtype) : undefined, undefined, opts?.device]), opts);
}

export const zerosLike = (t: Tensor) => call('aten::zeros_like', '', [t.handle]);
export const onesLike = (t: Tensor) => call('aten::ones_like', '', [t.handle]);
export const randnLike = (t: Tensor) => call('aten::randn_like', '', [t.handle]);
export const fullLike = (t: Tensor, value: number) => call('aten::full_like', '', [t.handle, value]);

/** Window functions for spectral analysis (periodic, as torch.hann_window's default). */
export function hannWindow(length: number, opts?: CreateOptions & { periodic?: boolean }): Tensor {
  return call('aten::hann_window', 'periodic', [length, opts?.periodic ?? true, opts?.dtype ? dtypeCode(opts.dtype) : undefined, undefined, opts?.device]);
}
