// The user's own model: a TorchScript archive as a KwsModel, so that everything above the engine (training
// loops, optimizers, defenses, analysis) sees one model interface (DESIGN.md "Models: built-in and the
// user's own").
//
// Security: a TorchScript archive is code (its forward is a program its author wrote, run with this
// process's rights); load only models you trust.
//
// How it fits the Module interface:
// - parameters(), namedParameters(), namedBuffers(), stateDict() are the archive's own tensors, aliased (not
//   copied): an optimizer step, copyInPlace or loadStateDict changes the archive, and save() writes it.
// - namedModules() returns one view per submodule of the archive. A view of a torch.nn Conv1d/Conv2d/Linear/
//   BatchNorm1d/BatchNorm2d/LayerNorm is an instance of kwshield's class of that name (instanceof works, so
//   neuron layers, the classifier, conv/BatchNorm channels are found as for a built-in model) with its
//   fields (weight, bias, running_mean, channel counts, stride, groups, eps...) read from the archive.
//   Assigning a tensor field puts that tensor in the archive's slot (the archive computes with it until the
//   original is put back), as assigning a module field does for a built-in model.
// - `training` of the model or of any view is the archive's flag for that module (train()/eval() reach
//   every module). A traced archive may ignore it: its BatchNorm mode was fixed when it was traced
//   (batchNormMode() tells).
// - A BatchNorm view's freezeStats and momentum work as on a built-in BatchNorm: forward() restores, or
//   re-weights, the running statistics the archive's compiled BatchNorm updated (a scripted BatchNorm's
//   momentum is a compile-time constant, so it cannot be set in the archive itself).
// - Hooks: a submodule's forward runs inside the archive's compiled code, not through the JS view, but a
//   view's forward can be shadowed as a built-in layer's can (withForwardHook, withNormReparam, any code that
//   assigns `forward`). While a view below the model is shadowed, forward() runs the archive's hooked forward
//   (ScriptModule.forwardHooked): the archive's code calls the view's forward wherever it calls that
//   submodule, and the view's own forward runs the submodule's compiled code (with the hooks of the views
//   below it). So activation hooks (Fine-Pruning, CLP, NGF), output replacement and per-call weight swaps
//   (NFT and ANP masks) work on a TorchScript model with autograd, and the defenses need no second path.
//   Without hooks forward() is the archive's compiled forward as it is. A submodule that cannot be hooked
//   (never called by its parent's forward, called through another method, or not one tensor in and one
//   out) makes a hooked forward fail with the layer's path and the reason.
// - Tensor fields a defense attaches to a view (NFT's `nft_mask`) are parameters or buffers of the model
//   (namedParameters, stateDict) as on a built-in layer, though not of the archive: save() never writes them.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BatchNorm1d, BatchNorm2d, buffer, Conv1d, Conv2d, isBatchNorm, isBuffer, LayerNorm, Linear, Module } from '../nn/index.ts';
import {
  addInPlace,
  any,
  clone,
  copyInPlace,
  isnan,
  loadScriptModule,
  mulInPlace,
  noGrad,
  type ScriptModule,
  type ScriptSubmodule,
  subInPlace,
  Tensor,
  tensor,
  tidy,
} from '../torch/index.ts';
import type { LoadScriptOptions, ScriptPlainValue } from '../torch/script-module.ts';
import type { KwsModel } from './registry.ts';

/** What a view of an archive's submodule carries besides its layer fields. */
export interface TorchScriptView {
  /** dotted path in the archive */
  readonly torchScriptPath: string;
  /** the submodule's class, unmangled (e.g. __torch__.torch.nn.modules.conv.Conv2d) */
  readonly torchScriptType: string;
}

/** The torch.nn classes whose submodules become views of kwshield's class of the same name. */
const layerClasses: Record<string, typeof Module> = {
  '__torch__.torch.nn.modules.conv.Conv1d': Conv1d as unknown as typeof Module,
  '__torch__.torch.nn.modules.conv.Conv2d': Conv2d as unknown as typeof Module,
  '__torch__.torch.nn.modules.linear.Linear': Linear as unknown as typeof Module,
  '__torch__.torch.nn.modules.batchnorm.BatchNorm1d': BatchNorm1d as unknown as typeof Module,
  '__torch__.torch.nn.modules.batchnorm.BatchNorm2d': BatchNorm2d as unknown as typeof Module,
  '__torch__.torch.nn.modules.normalization.LayerNorm': LayerNorm as unknown as typeof Module,
};

/** How a TorchScriptModel tells whether a view's forward is shadowed (hooked). */
const hookState = Symbol('torchscript-hook-state');
interface HookedView {
  [hookState]: { isHooked(): boolean };
}

/** A submodule of an archive whose class kwshield has no view for (pooling, activations, the user's own blocks). */
export class TorchScriptSubmodule extends Module {}

const num = (v: ScriptPlainValue | undefined): number | undefined => (typeof v === 'number' ? v : undefined);
const ints = (v: ScriptPlainValue | undefined, n: number): number[] | undefined =>
  Array.isArray(v) && v.every((e) => typeof e === 'number')
    ? v.length === 1
      ? Array(n).fill(v[0])
      : (v as number[])
    : typeof v === 'number'
      ? Array(n).fill(v)
      : undefined;

/** A setting of a layer: its attribute (scripted) or the constant argument of the op it calls (traced). */
function setting(rec: ScriptSubmodule, attr: string, arg = attr): ScriptPlainValue | undefined {
  if (attr in rec.attributes) return rec.attributes[attr];
  for (const op of rec.ops) if (arg in op.args) return op.args[arg];
  return undefined;
}

/** A KwsModel over a loaded TorchScript archive (see the file comment). Load with loadTorchScriptModel(). */
export class TorchScriptModel extends Module {
  readonly script: ScriptModule;
  /** views by path, pre-order, without the top module */
  private readonly views = new Map<string, Module & TorchScriptView>();
  private readonly childrenOf = new Map<string, [string, Module][]>();
  /** the archive's own tensor slots of each view (parameters and buffers) */
  private readonly slots = new Map<string, Set<string>>();

  constructor(script: ScriptModule) {
    super();
    this.script = script;
    Object.defineProperty(this, 'training', {
      get: () => this.script.handle.isTraining(),
      set: (on: boolean) => this.script.handle.setTrainingAt('', on),
      enumerable: false,
      configurable: true,
    });
    for (const rec of script.submodules()) {
      if (rec.path === '') continue;
      this.views.set(rec.path, this.makeView(rec));
    }
    for (const p of ['', ...this.views.keys()]) this.childrenOf.set(p, []);
    for (const [p, view] of this.views) {
      const dot = p.lastIndexOf('.');
      const parent = dot < 0 ? '' : p.slice(0, dot);
      this.childrenOf.get(parent)?.push([p.slice(dot + 1), view]);
    }
    for (const [p, view] of this.views) {
      const children = this.childrenOf.get(p) ?? [];
      Object.defineProperty(view, 'namedChildren', { value: () => [...children], enumerable: false });
    }
  }

  /**
   * Runs the forward of the archive's module at `path` ('' for the whole model) on x: the compiled forward as
   * it is, or, when views below it have a shadowed forward (a hook), the hooked forward that calls each
   * such view's forward where the archive calls that submodule.
   */
  private runArchive(path: string, x: Tensor): Tensor {
    const prefix = path ? `${path}.` : '';
    const below = [...this.views].filter(([q, v]) => q.startsWith(prefix) && q !== path && (v as unknown as HookedView)[hookState].isHooked());
    // A hooked view inside another is reached when the outer one's own forward runs (runArchive at its path).
    const hooked = below.filter(([q]) => !below.some(([outer]) => q.startsWith(`${outer}.`)));
    const out = hooked.length
      ? this.script.forwardHooked(
          path,
          hooked.map(([q]) => q.slice(prefix.length)),
          [x],
          (i, input) => (hooked[i][1] as unknown as { forward(x: Tensor): Tensor }).forward(input),
        )
      : this.script.forwardAt(path, [x]);
    if (!(out instanceof Tensor)) {
      throw new Error(`the forward of ${path ? `'${path}'` : 'the model'} in ${this.script.file} did not return one tensor; kwshield needs one tensor out`);
    }
    return out;
  }

  /** Why a forward hook on the submodule at `path` could never run, or null (see "Hooks" in the file comment). */
  hookProblem(path: string): string | null {
    if (!this.views.has(path)) return `the TorchScript archive ${this.script.file} has no submodule '${path}'`;
    return this.script.hookProblem('', [path]);
  }

  /** Tensor fields a defense attached to views (e.g. NFT's masks), which the archive does not have: [name, tensor, isBuffer]. */
  private attachedTensors(): [string, Tensor, boolean][] {
    const out: [string, Tensor, boolean][] = [];
    for (const [p, view] of this.views) {
      const slots = this.slots.get(p);
      for (const [key, value] of Object.entries(view)) {
        if (value instanceof Tensor && !slots?.has(key)) out.push([`${p}.${key}`, value, isBuffer(value)]);
      }
    }
    return out;
  }

  /** the archive's file */
  get file(): string {
    return this.script.file;
  }

  forward(x: Tensor): Tensor {
    const adjusted = this.modules().filter(
      (m): m is BatchNorm1d & TorchScriptView =>
        isBatchNorm(m) && (m.freezeStats || (m as unknown as ViewState).momentumOverride !== undefined) && m.training && Boolean(m.running_mean),
    );
    if (adjusted.length === 0) return this.runArchive('', x);
    // The archive's BatchNorm updates whatever tensors sit in its running-statistics slots. Those slots get
    // copies for this pass, and the originals are put back afterwards: left as they were (freezeStats), or
    // moved as the momentum asked for would have moved them. The originals are never written while autograd
    // may hold them, so a backward through this pass finds its saved tensors unchanged.
    const swapped = noGrad(() =>
      adjusted.map((bn) => {
        const original = { running_mean: bn.running_mean, running_var: bn.running_var, num_batches_tracked: bn.num_batches_tracked };
        const copies = { running_mean: clone(bn.running_mean), running_var: clone(bn.running_var), num_batches_tracked: clone(bn.num_batches_tracked) };
        for (const t of Object.values(copies)) t.persistent = true;
        Object.assign(bn, copies);
        return { original, copies };
      }),
    );
    try {
      return this.runArchive('', x);
    } finally {
      adjusted.forEach((bn, i) => {
        const { original, copies } = swapped[i];
        Object.assign(bn, original);
        if (!bn.freezeStats) {
          // The archive moved each statistic by m0 (its momentum; for momentum None, 1 / batches seen) from
          // the original toward the batch's; the momentum asked for, m, moves it by m: old + (m / m0) (moved - old).
          noGrad(() =>
            tidy(() => {
              const state = bn as unknown as ViewState;
              const m0 = state.archiveMomentum ?? 1 / Math.max(1, copies.num_batches_tracked.item());
              const ratio = (state.momentumOverride as number) / m0;
              for (const name of ['running_mean', 'running_var'] as const) {
                subInPlace(copies[name], original[name]);
                mulInPlace(copies[name], ratio);
                addInPlace(original[name], copies[name]);
              }
              copyInPlace(original.num_batches_tracked, copies.num_batches_tracked);
            }),
          );
        }
        for (const t of Object.values(copies)) t.dispose();
      });
    }
  }

  override namedChildren(): [string, Module][] {
    return [...(this.childrenOf.get('') ?? [])];
  }

  override namedModules(prefix = ''): [string, Module][] {
    const join = (p: string) => (prefix ? (p ? `${prefix}.${p}` : prefix) : p);
    return [[join(''), this], ...[...this.views].map(([p, v]) => [join(p), v] as [string, Module])];
  }

  override namedParameters(): [string, Tensor][] {
    const attached = this.attachedTensors().filter(([, , b]) => !b);
    return [...this.script.namedParameters(), ...attached.map(([n, t]) => [n, t] as [string, Tensor])];
  }

  override namedBuffers(): [string, Tensor][] {
    const attached = this.attachedTensors().filter(([, , b]) => b);
    return [...this.script.namedBuffers(), ...attached.map(([n, t]) => [n, t] as [string, Tensor])];
  }

  /** Parameters and buffers by dotted name, in PyTorch's state_dict order (each module's parameters, then its buffers, pre-order). */
  override stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const rec of this.script.submodules()) {
      const prefix = rec.path ? `${rec.path}.` : '';
      for (const name of rec.parameters) {
        const t = this.script.parameter(prefix + name);
        if (t) out.set(prefix + name, t);
      }
      for (const name of rec.buffers) {
        const t = this.script.buffer(prefix + name);
        if (t) out.set(prefix + name, t);
      }
    }
    for (const [name, t] of this.attachedTensors()) out.set(name, t);
    return out;
  }

  override to(device: string): this {
    this.script.to(device);
    return this;
  }

  /** 4-D weights in channels_last, in place (as a built-in model's channelsLast(), faster 2-D convolutions on CPU). */
  override channelsLast(): this {
    this.script.channelsLast();
    return this;
  }

  /** Writes the archive with the current parameters and buffers (temporary file, then rename). */
  save(file: string): void {
    this.script.save(file);
  }

  override dispose(): void {
    this.script.dispose();
  }

  /** Neuron layers (specs/models.md "Neurons"): conv and Linear layers in module order, the classifier (last Linear) excluded. */
  neuronLayers(): string[] {
    const layers = [...this.views].filter(([, m]) => m instanceof Conv1d || m instanceof Conv2d || m instanceof Linear).map(([p]) => p);
    const linears = layers.filter((p) => this.views.get(p) instanceof Linear);
    const classifier = linears[linears.length - 1];
    return layers.filter((p) => p !== classifier);
  }

  private makeView(rec: ScriptSubmodule): Module & TorchScriptView {
    const cls = layerClasses[rec.type];
    const view = (cls ? Object.create(cls.prototype) : new TorchScriptSubmodule()) as Module & TorchScriptView & ViewState;
    const script = this.script;
    const p = rec.path;
    Object.defineProperty(view, 'torchScriptPath', { value: p, enumerable: false });
    Object.defineProperty(view, 'torchScriptType', { value: rec.type, enumerable: false });
    Object.defineProperty(view, 'training', {
      get: () => script.getAttr(p, 'training') === true,
      set: (on: boolean) => script.handle.setTrainingAt(p, on),
      enumerable: false,
      configurable: true,
    });
    // Tensor fields: the archive's slots. Enumerable, so Module's walk over a view finds them.
    const tensorField = (name: string, original: Tensor | undefined, isBuffer: boolean) => {
      if (original && isBuffer) buffer(original);
      let current: Tensor | null = original ?? null;
      Object.defineProperty(view, name, {
        get: () => current,
        set: (t: Tensor | null) => {
          if (!t) throw new Error(`${p}.${name} of the TorchScript archive cannot be removed (set to null); put a tensor of its shape instead`);
          script.setAttr(p, name, t);
          current = t;
        },
        enumerable: true,
        configurable: true,
      });
    };
    for (const name of rec.parameters) tensorField(name, script.parameter(`${p}.${name}`), false);
    for (const name of rec.buffers) tensorField(name, script.buffer(`${p}.${name}`), true);
    // A layer without the slot (a conv's bias=False) reads as null, as on a built-in layer.
    if (cls && !rec.parameters.includes('bias')) Object.defineProperty(view, 'bias', { value: null, enumerable: false, writable: false });
    // The submodule's own forward (run by the archive, with the hooks of the views below it); assigning
    // `forward` shadows it as on a built-in layer (withForwardHook, withNormReparam), and the archive's
    // forward then calls the shadow wherever it calls this submodule (see "Hooks" in the file comment).
    const original = (x: Tensor): Tensor => this.runArchive(p, x);
    let current: (x: Tensor) => Tensor = original;
    Object.defineProperty(view, 'forward', {
      get: () => current,
      set: (f: (x: Tensor) => Tensor) => {
        if (typeof f !== 'function') throw new Error(`the forward of '${p}' must be a function`);
        current = f;
      },
      enumerable: false,
      configurable: true,
    });
    Object.defineProperty(view, hookState, { value: { isHooked: () => current !== original }, enumerable: false });
    this.slots.set(p, new Set([...rec.parameters, ...rec.buffers]));
    this.layerFields(view, rec);
    return view;
  }

  /** The plain fields of kwshield's layer classes, from the archive's attributes, op constants and weight shapes. */
  private layerFields(view: Module & ViewState, rec: ScriptSubmodule): void {
    const v = view as unknown as Record<string, unknown>;
    const weight = v.weight as Tensor | null | undefined;
    const shape = weight?.shape ?? [];
    const groups = num(setting(rec, 'groups')) ?? 1;
    const state: ViewState = view;
    if (view instanceof Conv2d) {
      Object.assign(v, {
        groups,
        outChannels: num(setting(rec, 'out_channels')) ?? shape[0],
        inChannels: num(setting(rec, 'in_channels')) ?? shape[1] * groups,
        stride: ints(setting(rec, 'stride'), 2) ?? [1, 1],
        padding: ints(setting(rec, 'padding'), 2) ?? [0, 0],
        dilation: ints(setting(rec, 'dilation'), 2) ?? [1, 1],
      });
    } else if (view instanceof Conv1d) {
      Object.assign(v, {
        outChannels: num(setting(rec, 'out_channels')) ?? shape[0],
        inChannels: num(setting(rec, 'in_channels')) ?? shape[1] * groups,
        opts: {
          stride: ints(setting(rec, 'stride'), 1)?.[0] ?? 1,
          padding: ints(setting(rec, 'padding'), 1)?.[0] ?? 0,
          dilation: ints(setting(rec, 'dilation'), 1)?.[0] ?? 1,
          groups,
        },
      });
    } else if (view instanceof Linear) {
      Object.assign(v, { outFeatures: num(setting(rec, 'out_features')) ?? shape[0], inFeatures: num(setting(rec, 'in_features')) ?? shape[1] });
    } else if (isBatchNorm(view)) {
      const momentum = setting(rec, 'momentum');
      const eps = num(setting(rec, 'eps')) ?? 1e-5;
      state.archiveMomentum = typeof momentum === 'number' ? momentum : null;
      Object.assign(v, {
        numFeatures: num(setting(rec, 'num_features')) ?? shape[0] ?? (v.running_mean as Tensor | undefined)?.shape[0],
        dims: view instanceof BatchNorm2d ? [4] : [2, 3],
        opts: { eps, momentum: state.archiveMomentum ?? undefined },
        freezeStats: false,
      });
      Object.defineProperty(view, 'momentum', {
        get: () => state.momentumOverride ?? state.archiveMomentum ?? 0.1,
        set: (m: number) => {
          state.momentumOverride = m === state.archiveMomentum ? undefined : m;
        },
        enumerable: false,
        configurable: true,
      });
    } else if (view instanceof LayerNorm) {
      const normalized = setting(rec, 'normalized_shape');
      Object.assign(v, { normalizedShape: Array.isArray(normalized) ? normalized : shape, eps: num(setting(rec, 'eps')) ?? 1e-5 });
    }
  }
}

interface ViewState {
  /** the archive's BatchNorm momentum (null: cumulative average) */
  archiveMomentum?: number | null;
  /** a momentum set on the view, applied by re-weighting the archive's update */
  momentumOverride?: number;
}

/** Loads a TorchScript archive as a KwsModel in eval mode (trusted files only: an archive is code). */
export function loadTorchScriptModel(file: string, opts: LoadScriptOptions = {}): TorchScriptModel {
  const model = new TorchScriptModel(loadScriptModule(file, opts));
  model.eval();
  return model;
}

export const isTorchScriptModel = (m: Module): m is TorchScriptModel => m instanceof TorchScriptModel;

/**
 * How the archive's BatchNorm layers respond to train()/eval(), found by running a probe batch in each mode
 * and watching the running statistics (restored afterwards):
 * - 'follows-mode': updated in train mode only (a scripted model: BatchNorm reads `self.training`);
 * - 'frozen-eval': never updated (traced in eval mode: fine-tuning cannot adapt BatchNorm);
 * - 'frozen-train': updated in both modes (traced in train mode: eval also normalises by batch statistics);
 * - 'none': no BatchNorm with running statistics; 'mixed': layers disagree, or one updates in eval mode
 *   only (per layer in `layers`).
 * Watching the statistics, not the code, is what makes this hold for any archive: a traced graph has the
 * mode baked in as a constant, a scripted one may wrap BatchNorm in code of its own.
 */
export type BatchNormMode = 'follows-mode' | 'frozen-eval' | 'frozen-train' | 'none' | 'mixed';

export function batchNormMode(model: TorchScriptModel, probe: Tensor): { mode: BatchNormMode; layers: Record<string, Exclude<BatchNormMode, 'none'>> } {
  const bns = model.namedModules().filter(([, m]) => isBatchNorm(m) && (m as BatchNorm2d).running_mean) as [string, BatchNorm2d][];
  if (bns.length === 0) return { mode: 'none', layers: {} };
  const wasTraining = model.modules().map((m) => m.training);
  const saved = noGrad(() =>
    bns.map(([, bn]) => {
      const s = [clone(bn.running_mean), clone(bn.running_var), clone(bn.num_batches_tracked)];
      for (const t of s) t.persistent = true;
      return s;
    }),
  );
  const restore = () =>
    noGrad(() =>
      bns.forEach(([, bn], i) => {
        copyInPlace(bn.running_mean, saved[i][0]);
        copyInPlace(bn.running_var, saved[i][1]);
        copyInPlace(bn.num_batches_tracked, saved[i][2]);
      }),
    );
  const updated = (train: boolean): boolean[] => {
    model.train(train);
    // (a block, not an expression: what tidy returns outlives it)
    tidy(() => {
      noGrad(() => model.forward(probe));
    });
    const changed = noGrad(() => tidy(() => bns.map(([, bn], i) => any(bn.running_mean.sub(saved[i][0]).abs().gt(0)).item() !== 0)));
    restore();
    return changed;
  };
  try {
    const inTrain = updated(true);
    const inEval = updated(false);
    const layers: Record<string, Exclude<BatchNormMode, 'none'>> = {};
    bns.forEach(([name], i) => {
      layers[name] = inTrain[i] ? (inEval[i] ? 'frozen-train' : 'follows-mode') : inEval[i] ? 'mixed' : 'frozen-eval';
    });
    const modes = new Set(Object.values(layers));
    return { mode: modes.size === 1 ? [...modes][0] : 'mixed', layers };
  } finally {
    restore();
    model.modules().forEach((m, i) => {
      m.training = wasTraining[i];
    });
    for (const s of saved) for (const t of s) t.dispose();
  }
}

/** Why an archive cannot be used as a classifier of `classes` classes on inputs of `inputShape`; the fix is in the message. */
export class TorchScriptImportError extends Error {}

export interface TorchScriptImportReport {
  format: 'torchscript';
  file: string;
  sha256: string;
  /** one clip's input shape (no batch dim), e.g. [16000] for raw 16 kHz waveform */
  inputShape: number[];
  classes: number;
  batchNorm: BatchNormMode;
  /** conv/Linear neuron layers (classifier excluded), the classifier, BatchNorm layers, by archive path */
  neuronLayers: string[];
  classifier: string | null;
  batchNorms: string[];
  parameters: number;
}

/**
 * The first part of `kwshield import --torchscript`: loads the archive, probes it with a batch of silence
 * (eval mode: one tensor [batch, classes], finite) and finds its layers and BatchNorm mode. The caller
 * writes the run folder; the model is returned in eval mode (dispose it when done).
 */
export function importTorchScript(file: string, opts: { inputShape: number[]; classes: number }): { model: TorchScriptModel; report: TorchScriptImportReport } {
  const model = loadTorchScriptModel(file);
  try {
    const batch = 2;
    const size = opts.inputShape.reduce((a, b) => a * b, 1);
    tidy(() => {
      const silence = tensor(new Float32Array(batch * size), [batch, ...opts.inputShape]);
      let out: Tensor;
      try {
        out = noGrad(() => model.forward(silence));
      } catch (e) {
        throw new TorchScriptImportError(
          `${file} cannot take a batch of inputs of shape [batch, ${opts.inputShape.join(', ')}]: ${(e as Error).message.split('\n')[0]}; give the input the model was exported for (--input)`,
        );
      }
      if (out.ndim !== 2 || out.shape[0] !== batch || out.shape[1] !== opts.classes) {
        throw new TorchScriptImportError(
          `${file} gives outputs of shape [${out.shape.join(', ')}] for a batch of ${batch}; kwshield needs [batch, classes] logits with ${opts.classes} classes (as many as --classes lists)`,
        );
      }
      if (any(isnan(out)).item() !== 0)
        throw new TorchScriptImportError(`${file} gives NaN outputs for a batch of silence; check the model's front-end (a log of 0?) before importing it`);
    });
    const probe = tidy(() => {
      // Deterministic pseudo-noise (dyadic values, exact in float32), so the probe does not depend on the seed.
      const data = new Float32Array(4 * size);
      for (let i = 0; i < data.length; i++) data[i] = (((i * 7919) % 2001) - 1000) / 2048;
      return tensor(data, [4, ...opts.inputShape]);
    });
    const { mode } = (() => {
      try {
        return batchNormMode(model, probe);
      } finally {
        probe.dispose();
      }
    })();
    const neuronLayers = model.neuronLayers();
    const linears = model.namedModules().filter(([, m]) => m instanceof Linear);
    const report: TorchScriptImportReport = {
      format: 'torchscript',
      file,
      sha256: createHash('sha256').update(readFileSync(file)).digest('hex'),
      inputShape: [...opts.inputShape],
      classes: opts.classes,
      batchNorm: mode,
      neuronLayers,
      classifier: linears.length ? linears[linears.length - 1][0] : null,
      batchNorms: model
        .namedModules()
        .filter(([, m]) => isBatchNorm(m))
        .map(([p]) => p),
      parameters: model.parameterCount(),
    };
    model.eval();
    return { model, report };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/**
 * Why `needs` (a defense's sentence: what it does with the layers) cannot be done on `model` because a forward
 * hook on one of `layers` could never run inside its TorchScript archive; null for a built-in model or when
 * every layer can be hooked. The message names the layer, the need and the reason.
 */
export function hookProblem(model: Module, layers: readonly string[], needs: string): string | null {
  if (!(model instanceof TorchScriptModel)) return null;
  for (const layer of layers) {
    const why = model.hookProblem(layer);
    if (why) return `${needs}, with a forward hook on '${layer}'; in the TorchScript archive ${model.file}, ${why}`;
  }
  return null;
}

/** The view's archive path, or null for a module that is not a view of a TorchScript archive. */
export function torchScriptPathOf(m: Module): string | null {
  return (m as Partial<TorchScriptView>).torchScriptPath ?? null;
}

export type { KwsModel };
