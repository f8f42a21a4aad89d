// The TypeScript face of one libtorch tensor. Freed deterministically by dispose(), `using`, or the
// tidy() scope that made it (see scope.ts); methods are thin sugar over ops/*.
import { type DType, dtypeName } from './dtype.ts';
import type { TensorHandle } from './native.ts';
import * as creation from './ops/creation.ts';
import * as math from './ops/math.ts';
import * as nnf from './ops/nn.ts';
import * as reduce from './ops/reduce.ts';
import * as shapeOps from './ops/shape.ts';
import { track } from './scope.ts';

type Operand = Tensor | number;

export class Tensor {
  readonly handle: TensorHandle;
  /** Exempt from tidy() scopes (parameters, buffers, keep()). */
  persistent = false;
  readonly isTensorMarker = true;

  constructor(handle: TensorHandle) {
    this.handle = handle;
    track(this);
  }

  get shape(): number[] {
    return this.handle.shape();
  }
  get ndim(): number {
    return this.handle.shape().length;
  }
  get numel(): number {
    return this.handle.numel();
  }
  get dtypeCode(): number {
    return this.handle.dtype();
  }
  get dtype(): DType {
    return dtypeName(this.handle.dtype());
  }
  get device(): string {
    return this.handle.device();
  }
  get isDisposed(): boolean {
    return this.handle.isDisposed();
  }
  get requiresGrad(): boolean {
    return this.handle.requiresGrad();
  }
  set requiresGrad(on: boolean) {
    this.handle.setRequiresGrad(on);
  }
  /** The accumulated gradient (a new Tensor sharing its data), or null. */
  get grad(): Tensor | null {
    const g = this.handle.grad();
    return g ? new Tensor(g) : null;
  }
  set grad(g: Tensor | null) {
    this.handle.setGrad(g ? g.handle : null);
  }
  get isLeaf(): boolean {
    return this.handle.isLeaf();
  }
  /** Size along one dim (negative counts from the end). */
  size(dim: number): number {
    const s = this.shape;
    const d = dim < 0 ? s.length + dim : dim;
    if (d < 0 || d >= s.length) throw new RangeError(`dim ${dim} is out of range for a tensor of shape [${s.join(', ')}]`);
    return s[d];
  }

  /** The single value of a one-element tensor. */
  item(): number {
    return Number(this.handle.item());
  }
  /** A copy of the data (row-major) in the matching typed array; int64 comes as BigInt64Array. */
  data(): ArrayBufferView {
    return this.handle.toTypedArray();
  }
  /** A copy of the data as float32 numbers (converting integer or double tensors). */
  toFloat32Array(): Float32Array {
    const d = this.handle.toTypedArray();
    if (d instanceof Float32Array) return d;
    if (d instanceof BigInt64Array) return Float32Array.from(d, Number);
    return Float32Array.from(d as unknown as ArrayLike<number>);
  }
  /** The data as plain numbers (int64 converted). */
  toArray(): number[] {
    const d = this.handle.toTypedArray();
    if (d instanceof BigInt64Array) return Array.from(d, Number);
    return Array.from(d as unknown as ArrayLike<number>);
  }
  /** The raw little-endian bytes (for serialisation). */
  bytes(): Uint8Array {
    return this.handle.toTypedArray(true) as Uint8Array;
  }

  /** Frees the native tensor now. Idempotent; later use throws a clear error. */
  dispose(): void {
    this.handle.dispose();
  }
  [Symbol.dispose](): void {
    this.handle.dispose();
  }

  toString(): string {
    return this.isDisposed ? 'Tensor(disposed)' : `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device})`;
  }

  // Sugar: the most used ops as methods.
  add(b: Operand, alpha?: number): Tensor {
    return math.add(this, b, alpha);
  }
  sub(b: Operand, alpha?: number): Tensor {
    return math.sub(this, b, alpha);
  }
  mul(b: Operand): Tensor {
    return math.mul(this, b);
  }
  div(b: Operand): Tensor {
    return math.div(this, b);
  }
  pow(e: Operand): Tensor {
    return math.pow(this, e);
  }
  neg(): Tensor {
    return math.neg(this);
  }
  exp(): Tensor {
    return math.exp(this);
  }
  log(): Tensor {
    return math.log(this);
  }
  sqrt(): Tensor {
    return math.sqrt(this);
  }
  abs(): Tensor {
    return math.abs(this);
  }
  square(): Tensor {
    return math.square(this);
  }
  relu(): Tensor {
    return math.relu(this);
  }
  sigmoid(): Tensor {
    return math.sigmoid(this);
  }
  tanh(): Tensor {
    return math.tanh(this);
  }
  clamp(min?: number, max?: number): Tensor {
    return math.clamp(this, min, max);
  }
  eq(b: Operand): Tensor {
    return math.eq(this, b);
  }
  gt(b: Operand): Tensor {
    return math.gt(this, b);
  }
  lt(b: Operand): Tensor {
    return math.lt(this, b);
  }
  sum(dim?: number | number[], keepdim = false): Tensor {
    return reduce.sum(this, dim, keepdim);
  }
  mean(dim?: number | number[], keepdim = false): Tensor {
    return reduce.mean(this, dim, keepdim);
  }
  max(dim?: number, keepdim = false): Tensor {
    return reduce.max(this, dim, keepdim);
  }
  min(dim?: number, keepdim = false): Tensor {
    return reduce.min(this, dim, keepdim);
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return reduce.argmax(this, dim, keepdim);
  }
  norm(p = 2, dim?: number | number[], keepdim = false): Tensor {
    return reduce.norm(this, p, dim, keepdim);
  }
  matmul(b: Tensor): Tensor {
    return nnf.matmul(this, b);
  }
  reshape(shape: number[]): Tensor {
    return shapeOps.reshape(this, shape);
  }
  view(shape: number[]): Tensor {
    return shapeOps.view(this, shape);
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return shapeOps.flatten(this, startDim, endDim);
  }
  transpose(dim0: number, dim1: number): Tensor {
    return shapeOps.transpose(this, dim0, dim1);
  }
  permute(dims: number[]): Tensor {
    return shapeOps.permute(this, dims);
  }
  unsqueeze(dim: number): Tensor {
    return shapeOps.unsqueeze(this, dim);
  }
  squeeze(dim?: number): Tensor {
    return shapeOps.squeeze(this, dim);
  }
  expand(shape: number[]): Tensor {
    return shapeOps.expand(this, shape);
  }
  contiguous(format: 'contiguous' | 'channelsLast' = 'contiguous'): Tensor {
    return shapeOps.contiguous(this, format);
  }
  clone(): Tensor {
    return shapeOps.clone(this);
  }
  detach(): Tensor {
    return shapeOps.detach(this);
  }
  to(dtype: DType): Tensor {
    return shapeOps.toDtype(this, dtype);
  }
  toDevice(device: string): Tensor {
    return shapeOps.toDevice(this, device);
  }
  select(dim: number, index: number): Tensor {
    return shapeOps.select(this, dim, index);
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return shapeOps.narrow(this, dim, start, length);
  }
  zerosLike(): Tensor {
    return creation.zerosLike(this);
  }
  get isChannelsLast(): boolean {
    return this.handle.isChannelsLast();
  }
  get isContiguous(): boolean {
    return this.handle.isContiguous();
  }
  /** Copies `data` (same element size and count) into this tensor's storage. */
  copyFrom(data: ArrayBufferView): void {
    this.handle.copyFrom(data);
  }
}
