// A TorchScript archive loaded by libtorch's own loader (torch::jit::load, native/src/script_module.cc).
//
// Security: a TorchScript archive is code. Loading it runs no Python, but its forward is a program written
// by whoever made the archive, run with this process's rights; load only models you trust.
//
// Memory: the module's parameters and buffers are wrapped once, at load, as persistent Tensors that alias
// the module's own tensors (the same storage and autograd state): an in-place optimizer step on them changes
// what the module computes and saves, and backward through forward() fills their .grad. No tidy() scope
// frees them; dispose() does. Tensors forward() returns are ordinary ones, owned by the enclosing scope.
import { randomBytes } from 'node:crypto';
import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { native, type ScriptModuleHandle, type ScriptModuleRecord, type ScriptPlainValue, type TensorHandle } from './native.ts';
import { Tensor } from './tensor.ts';

export type { ScriptLayerOp, ScriptPlainValue } from './native.ts';

/** A TorchScript archive could not be loaded: the message names the file, the reason and the fix. */
export class TorchScriptLoadError extends Error {}

/** One module of the archive: its path, class, own tensors, settings, and whether it follows train/eval. */
export interface ScriptSubmodule extends ScriptModuleRecord {
  /** the class name without TorchScript's name mangling, e.g. __torch__.torch.nn.modules.conv.Conv2d */
  type: string;
  /** the class name as TorchScript spells it (may carry ___torch_mangle_N) */
  qualifiedType: string;
}

/** What forward() takes: tensors, numbers, booleans, strings, null, and arrays of them (as tuples/lists). */
export type ScriptInput = Tensor | number | boolean | string | null | ScriptInput[];
/** What forward() gives back: a tensor, or tuples/lists/dicts of tensors and plain values. */
export type ScriptOutput = Tensor | ScriptPlainValue | ScriptOutput[] | { [key: string]: ScriptOutput };

/** TorchScript's qualified class name without its ___torch_mangle_N segments. */
export const unmangledType = (qualified: string): string => qualified.replace(/\.___torch_mangle_\d+/g, '');

function toNativeInput(v: ScriptInput): unknown {
  if (v instanceof Tensor) return v.handle;
  if (Array.isArray(v)) return v.map(toNativeInput);
  return v;
}

function fromNativeOutput(v: unknown): ScriptOutput {
  if (v instanceof native.ScriptModuleHandle) throw new Error('a TorchScript method returned a module, which kwshield cannot use');
  if (v instanceof native.TensorHandle) return new Tensor(v as TensorHandle);
  if (Array.isArray(v)) return v.map(fromNativeOutput);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, ScriptOutput> = {};
    for (const [k, e] of Object.entries(v)) out[k] = fromNativeOutput(e);
    return out;
  }
  return v as ScriptPlainValue;
}

/** Turns libtorch's loader error into one that says what the file is and what to do. */
function loadError(file: string, message: string): TorchScriptLoadError {
  const first = message.split('\n').find((l) => l.trim()) ?? message;
  const export_ = 'export the model from PyTorch with torch.jit.script(model).save(path) (or torch.jit.trace(model, example).save(path))';
  let why: string;
  if (/failed locating file|file not found/i.test(message)) {
    why = `is a PyTorch archive without TorchScript code (a torch.save() checkpoint: weights or a pickled nn.Module, which only Python can rebuild); ${export_}`;
  } else if (/central directory|failed reading zip|not in a subdirectory|PytorchStreamReader failed/i.test(message)) {
    why = `is not a TorchScript archive (not a readable zip archive: a TorchScript file is the zip torch.jit.save writes; this one is another kind of file, or truncated); ${export_}`;
  } else if (/version/i.test(message)) {
    why = `was written by a PyTorch whose TorchScript format this libtorch (${libtorchVersion()}) cannot read; export it with an older PyTorch or build kwshield against a newer libtorch (LIBTORCH=/path/to/libtorch npm run build:native)`;
  } else {
    why = `could not be loaded as TorchScript; ${export_}`;
  }
  return new TorchScriptLoadError(`${file} ${why} (libtorch: ${first.trim()})`);
}

function libtorchVersion(): string {
  const m = /PyTorch version\s*:?\s*([\w.+-]+)|TORCH_VERSION=([\w.+-]+)/.exec(native.buildInfo());
  return m ? (m[1] ?? m[2]) : 'the one kwshield was built with';
}

export interface LoadScriptOptions {
  device?: string;
  /**
   * Run forward on libtorch's optimised graph-executor plan (autodiff of the graph) instead of op by op with
   * eager autograd, the default: the optimised plan made a scripted ResNet's GN-FT step 15% slower than eager
   * PyTorch's on CPU (native/src/script_module.cc, Forward). For comparison (bench/run.ts) only.
   */
  graphOptimizer?: boolean;
}

/** Loads a TorchScript archive (trusted files only: an archive is code). */
export function loadScriptModule(file: string, opts: LoadScriptOptions = {}): ScriptModule {
  if (!existsSync(file)) throw new TorchScriptLoadError(`${file} not found: give the path of a TorchScript archive (a .pt file written by torch.jit.save)`);
  const info = statSync(file);
  if (info.isDirectory()) throw new TorchScriptLoadError(`${file} is a folder: give the path of a TorchScript archive (a .pt file written by torch.jit.save)`);
  if (info.size === 0) throw new TorchScriptLoadError(`${file} is empty: it is not a TorchScript archive (a zip written by torch.jit.save)`);
  let handle: ScriptModuleHandle;
  try {
    handle = native.loadScriptModule(path.resolve(file), opts.device);
  } catch (e) {
    throw loadError(file, (e as Error).message);
  }
  if (opts.graphOptimizer) handle.setGraphOptimizer(true);
  return new ScriptModule(handle, file);
}

/**
 * A loaded TorchScript module. Its parameters and buffers are live aliases of the module's tensors (see the
 * file comment); forward runs the archive's compiled code with autograd (under the caller's grad mode).
 */
export class ScriptModule {
  readonly handle: ScriptModuleHandle;
  /** the file it was loaded from */
  readonly file: string;
  private readonly params: Map<string, Tensor>;
  private readonly buffers: Map<string, Tensor>;
  private records: ScriptSubmodule[] | null = null;

  constructor(handle: ScriptModuleHandle, file: string) {
    this.handle = handle;
    this.file = file;
    const wrap = (pairs: [string, TensorHandle][]) =>
      new Map(
        pairs.map(([name, h]) => {
          const t = new Tensor(h);
          t.persistent = true;
          return [name, t] as const;
        }),
      );
    this.params = wrap(handle.namedParameters());
    this.buffers = wrap(handle.namedBuffers());
  }

  /** Parameters by dotted name, in the archive's order (the same Tensor objects on every call). */
  namedParameters(): [string, Tensor][] {
    this.check('namedParameters');
    return [...this.params];
  }

  namedBuffers(): [string, Tensor][] {
    this.check('namedBuffers');
    return [...this.buffers];
  }

  parameter(name: string): Tensor | undefined {
    return this.params.get(name);
  }

  buffer(name: string): Tensor | undefined {
    return this.buffers.get(name);
  }

  /** Every module of the archive, pre-order, the top one ('') first. */
  submodules(): ScriptSubmodule[] {
    this.check('submodules');
    this.records ??= this.handle.modules().map((r) => ({ ...r, qualifiedType: r.type, type: unmangledType(r.type) }));
    return this.records;
  }

  /** Runs the archive's forward on the inputs; the outputs belong to the enclosing tidy() scope. */
  forward(...inputs: ScriptInput[]): ScriptOutput {
    return this.forwardAt('', inputs);
  }

  /** Runs the forward of the submodule at `modulePath` ('' for the whole model). */
  forwardAt(modulePath: string, inputs: ScriptInput[]): ScriptOutput {
    this.check('forward');
    try {
      return fromNativeOutput(this.handle.forward(modulePath, inputs.map(toNativeInput)));
    } catch (e) {
      throw new Error(`${path.basename(this.file)}: ${(e as Error).message}`);
    }
  }

  /**
   * Forward hooks on submodules: runs the forward of the module at `modulePath` ('' for the whole model)
   * with every call of the submodules at `hooked` (paths relative to it) replaced by `callout(index, x)`,
   * index into `hooked`, x the tensor the archive passes to that submodule; the archive's code goes on with
   * the tensor callout returns (typically the submodule run on x by forwardAt, read or replaced by a hook).
   * The rewritten forward runs op by op (libtorch's interpreter, no graph-executor fusion), with autograd, so
   * a gradient reaches what callout computed and a gradient with respect to its result is well defined.
   * Tensors passed to callout belong to the enclosing scope; an x that is exactly a tensor an earlier
   * callout of this forward returned is that same Tensor object (so `input === previousOutput` tells that
   * a layer read the previous hooked layer's output directly). A submodule that is never called by its
   * parent's forward, is called through another method, or does not map one tensor to one tensor cannot
   * be hooked: the error names it and says why.
   */
  forwardHooked(modulePath: string, hooked: readonly string[], inputs: ScriptInput[], callout: (index: number, x: Tensor) => Tensor): ScriptOutput {
    this.check('forward');
    const returned = new Map<TensorHandle, Tensor>();
    try {
      return fromNativeOutput(
        this.handle.forwardHooked(modulePath, [...hooked], inputs.map(toNativeInput), (index, h) => {
          const out = callout(index, returned.get(h) ?? new Tensor(h));
          if (!(out instanceof Tensor)) throw new Error(`the hooked forward of '${hooked[index]}' returned no tensor`);
          returned.set(out.handle, out);
          return out.handle;
        }),
      );
    } catch (e) {
      const err = e as Error;
      if (!err.message.startsWith('hooked forward')) throw err;
      throw new Error(`${path.basename(this.file)}: ${err.message}`);
    }
  }

  /** Why forwardHooked cannot hook the submodules at `hooked` (relative to `modulePath`), or null: names the submodule and the reason. */
  hookProblem(modulePath: string, hooked: readonly string[]): string | null {
    this.check('hookProblem');
    return this.handle.hookProblem(modulePath, [...hooked]);
  }

  /** forward() for a model with one tensor in and one tensor out; anything else is refused. */
  forwardTensor(x: Tensor): Tensor {
    const out = this.forward(x);
    if (!(out instanceof Tensor)) {
      throw new Error(`${this.file}: forward returned ${describe(out)}, not one tensor; kwshield needs a model whose forward maps a batch to logits`);
    }
    return out;
  }

  /** Sets the archive's `training` flag on every module (what a scripted BatchNorm or Dropout reads). */
  train(on = true): this {
    this.check('train');
    this.handle.train(on);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  get training(): boolean {
    return this.handle.isTraining();
  }

  /** A value of the module at `modulePath`: a tensor (aliasing the slot; owned by the caller's scope) or plain. */
  getAttr(modulePath: string, name: string): ScriptOutput {
    this.check('getAttr');
    return fromNativeOutput(this.handle.getAttr(modulePath, name));
  }

  /**
   * Puts `t` in the tensor slot `name` of the module at `modulePath` (same shape); the archive computes with
   * it from the next forward on, and save() writes it. The parameter wrappers still alias the tensors
   * loaded from the archive: put those back to restore the module (TorchScriptModel does this for you).
   */
  setAttr(modulePath: string, name: string, t: Tensor): void {
    this.check('setAttr');
    this.handle.setAttr(modulePath, name, t.handle);
  }

  /** Writes the archive (its code, the current parameters and buffers) to `file`, through a temporary file and a rename. */
  save(file: string): void {
    this.check('save');
    const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      this.handle.save(tmp);
      renameSync(tmp, file);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
  }

  /** Moves parameters and buffers to a device in place (the wrappers stay valid). */
  to(device: string): this {
    this.check('to');
    this.handle.to(device);
    return this;
  }

  /** Re-lays out 4-D parameters and buffers as channels_last, in place (the wrappers stay valid). */
  channelsLast(): this {
    this.check('channelsLast');
    this.handle.channelsLast();
    return this;
  }

  /** The forward graph, for messages and debugging. */
  code(): string {
    this.check('code');
    return this.handle.code();
  }

  get isDisposed(): boolean {
    return this.handle.isDisposed();
  }

  /** Frees the module and the wrappers of its tensors. Idempotent. */
  dispose(): void {
    for (const t of this.params.values()) t.dispose();
    for (const t of this.buffers.values()) t.dispose();
    this.handle.dispose();
  }

  private check(what: string): void {
    if (this.handle.isDisposed()) throw new Error(`${what}: the TorchScript module from ${this.file} was disposed`);
  }
}

function describe(v: ScriptOutput): string {
  if (Array.isArray(v)) return `a tuple or list of ${v.length}`;
  if (v === null) return 'None';
  if (typeof v === 'object') return `a dict with keys ${Object.keys(v).join(', ')}`;
  return `a ${typeof v}`;
}
