// Loads the libtorch addon (native/). Everything else reaches libtorch through this one module.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A native tensor handle: owns one at::Tensor. Wrapped by the TypeScript `Tensor`. */
export interface TensorHandle {
  shape(): number[];
  strides(): number[];
  dtype(): number;
  device(): string;
  numel(): number;
  bytes(): number;
  isDisposed(): boolean;
  dispose(): void;
  requiresGrad(): boolean;
  setRequiresGrad(on: boolean): void;
  grad(): TensorHandle | null;
  setGrad(g: TensorHandle | null): void;
  isLeaf(): boolean;
  hasGradFn(): boolean;
  item(): number | boolean;
  toTypedArray(raw?: boolean): ArrayBufferView;
  copyFrom(data: ArrayBufferView): void;
  isContiguous(): boolean;
  isChannelsLast(): boolean;
  sameStorage(other: TensorHandle): boolean;
  /** counts this handle's bytes as V8 external memory (for tensors no scope will free) */
  reportToGc(): void;
}

/** One ATen op, its schema looked up once. */
export interface OpHandle {
  call(args: unknown[], discardResult?: boolean): unknown;
  schema(): string;
}

/** One layer op a TorchScript module's own methods call, with its constant arguments by schema name. */
export interface ScriptLayerOp {
  op: string;
  args: Record<string, ScriptPlainValue>;
}

export type ScriptPlainValue = number | boolean | string | null | (number | boolean)[];

/** One module of a TorchScript archive, as native/src/script_module.cc describes it. */
export interface ScriptModuleRecord {
  /** dotted path ('' for the archive's top module) */
  path: string;
  /** TorchScript's qualified class name, e.g. __torch__.torch.nn.modules.conv.___torch_mangle_0.Conv2d */
  type: string;
  /** its own parameter and buffer names (not its submodules') */
  parameters: string[];
  buffers: string[];
  /** plain attributes and class constants (stride, groups, eps, momentum... for scripted torch.nn layers) */
  attributes: Record<string, ScriptPlainValue>;
  /** layer ops its own methods call, with constant arguments (what a traced layer keeps of its settings) */
  ops: ScriptLayerOp[];
  hasForward: boolean;
  /** its forward reads `self.training` (a scripted layer); a traced one has its mode baked in */
  readsTraining: boolean;
}

/** A loaded TorchScript module (torch::jit::Module). Tensors it returns alias the module's own. */
export interface ScriptModuleHandle {
  namedParameters(): [string, TensorHandle][];
  namedBuffers(): [string, TensorHandle][];
  modules(): ScriptModuleRecord[];
  forward(path: string, inputs: unknown[]): unknown;
  /**
   * The forward of the module at path with every call of the submodules at `hooked` (relative paths)
   * replaced by callout(index in hooked, input): the graph goes on with the tensor callout returns.
   */
  forwardHooked(path: string, hooked: string[], inputs: unknown[], callout: (index: number, x: TensorHandle) => TensorHandle): unknown;
  /** why the submodules at `hooked` (relative to path) cannot be hooked, or null */
  hookProblem(path: string, hooked: string[]): string | null;
  train(on: boolean): void;
  isTraining(): boolean;
  /** the `training` flag of the module at path only (not its submodules) */
  setTrainingAt(path: string, on: boolean): void;
  getAttr(path: string, name: string): unknown;
  setAttr(path: string, name: string, value: TensorHandle): void;
  save(file: string): void;
  to(device: string): void;
  channelsLast(): void;
  code(): string;
  setGraphOptimizer(on: boolean): void;
  isDisposed(): boolean;
  dispose(): void;
}

export interface NativeAddon {
  TensorHandle: abstract new (...args: never[]) => TensorHandle;
  ScriptModuleHandle: abstract new (...args: never[]) => ScriptModuleHandle;
  /** torch::jit::load; throws libtorch's message for a file it cannot read as TorchScript */
  loadScriptModule(file: string, device?: string): ScriptModuleHandle;
  findOp(name: string, overload: string): OpHandle;
  fromTypedArray(data: ArrayBufferView, shape: number[], dtype?: number, device?: string, raw?: boolean): TensorHandle;
  backward(
    tensors: TensorHandle[],
    grads: (TensorHandle | null)[] | null,
    retainGraph: boolean | null,
    createGraph: boolean,
    inputs: TensorHandle[] | null,
  ): void;
  grad(
    outputs: TensorHandle[],
    inputs: TensorHandle[],
    gradOutputs: (TensorHandle | null)[] | null,
    retainGraph: boolean | null,
    createGraph: boolean,
    allowUnused: boolean,
  ): (TensorHandle | null)[];
  setGradEnabled(on: boolean): boolean;
  isGradEnabled(): boolean;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  manualSeed(seed: number): void;
  memory(): { liveTensors: number; liveBytes: number; peakBytes: number };
  resetPeak(): void;
  cudaAvailable(): boolean;
  emptyCache(): void;
  cachedBytes(): number;
  cacheStats(): { capBytes: number; misses: number };
  /** withShapes: one row per op and input shapes */
  profileStart(withShapes?: boolean): void;
  profileStop(): OpProfile[];
  buildInfo(): string;
}

/** One op's totals from libtorch's profiler (self excludes the ops it called). */
export interface OpProfile {
  name: string;
  calls: number;
  totalUs: number;
  selfUs: number;
}

function loadAddon(): NativeAddon {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const addonPath = path.resolve(here, '..', '..', 'native', 'build', 'Release', 'kwshield_torch.node');
  if (!existsSync(addonPath)) {
    throw new Error(
      `kwshield's libtorch addon is not built (${addonPath} is missing). Run \`npm ci\` or \`npm run build:native\` ` +
        '(it needs libtorch: as root, apt-get install -y libtorch-dev, or set LIBTORCH=/path/to/libtorch).',
    );
  }
  return createRequire(import.meta.url)(addonPath) as NativeAddon;
}

// Debian's libtorch runs ops on a GNU OpenMP pool and matrix products on OpenBLAS's own thread pool.
// OpenMP's default (active) wait keeps idle OpenMP threads spinning on the cores the OpenBLAS threads
// need. Measured with bench/models.ts (2 cores, batch 128): an LSTM training step took 990 ms instead
// of 337 ms, KWT 2,398 ms instead of 1,382 ms; ResNet was unchanged. libgomp reads the variable when
// it loads, so it must be set before the addon is. A value the user set wins.
process.env.OMP_WAIT_POLICY ??= 'passive';

export const native: NativeAddon = loadAddon();
