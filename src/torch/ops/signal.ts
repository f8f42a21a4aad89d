// Spectral analysis. stft returns a complex tensor; take complexAbs or viewAsReal to get real numbers.
import type { Tensor } from '../tensor.ts';
import { call, h } from './dispatch.ts';

export interface StftOptions {
  nFft: number;
  hopLength?: number;
  winLength?: number;
  window?: Tensor | null;
  /** pad so frames are centred on hop multiples (torch default true) */
  center?: boolean;
  padMode?: 'reflect' | 'constant' | 'replicate' | 'circular';
  normalized?: boolean;
  onesided?: boolean;
}

/** Short-time Fourier transform of [..., time] signals: complex [..., nFft/2+1, frames]. */
export function stft(x: Tensor, o: StftOptions): Tensor {
  return call('aten::stft', 'center', [
    x.handle,
    o.nFft,
    o.hopLength ?? null,
    o.winLength ?? null,
    h(o.window),
    o.center ?? true,
    o.padMode ?? 'reflect',
    o.normalized ?? false,
    o.onesided ?? null,
    true,
  ]);
}

export interface IstftOptions extends Omit<StftOptions, 'padMode'> {
  length?: number;
}

export function istft(spec: Tensor, o: IstftOptions): Tensor {
  return call('aten::istft', '', [
    spec.handle,
    o.nFft,
    o.hopLength ?? null,
    o.winLength ?? null,
    h(o.window),
    o.center ?? true,
    o.normalized ?? false,
    o.onesided ?? null,
    o.length ?? null,
    false,
  ]);
}

/** A complex tensor's real and imaginary parts as a trailing dim of 2. */
export const viewAsReal = (z: Tensor) => call('aten::view_as_real', '', [z.handle]);
export const viewAsComplex = (x: Tensor) => call('aten::view_as_complex', '', [x.handle]);
/** |z| of a complex tensor (real dtype). */
export const complexAbs = (z: Tensor) => call('aten::abs', '', [z.handle]);
export const rfft = (x: Tensor, n?: number, dim = -1) => call('aten::fft_rfft', '', [x.handle, n ?? null, dim]);
export const irfft = (x: Tensor, n?: number, dim = -1) => call('aten::fft_irfft', '', [x.handle, n ?? null, dim]);
