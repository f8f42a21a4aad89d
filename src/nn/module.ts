// Module: parameters and buffers found by walking an object's fields (tinygrad-style), named with
// PyTorch's dotted paths so that state dicts line up with a PyTorch model of the same architecture.
import { copyInPlace, noGrad, type Tensor, tidy, toDevice } from '../torch/index.ts';
import { cloneAs } from '../torch/ops/shape.ts';

const bufferTensors = new WeakSet<Tensor>();

/** Marks t as a trainable parameter owned by a module: requires grad, never freed by a scope. */
export function parameter(t: Tensor): Tensor {
  t.requiresGrad = true;
  t.persistent = true;
  return t;
}

/** Marks t as a module buffer (state that is saved but not trained, e.g. BatchNorm running stats). */
export function buffer(t: Tensor): Tensor {
  t.persistent = true;
  bufferTensors.add(t);
  return t;
}

export const isBuffer = (t: Tensor): boolean => bufferTensors.has(t);

const isTensorValue = (v: unknown): v is Tensor => typeof v === 'object' && v !== null && (v as { isTensorMarker?: boolean }).isTensorMarker === true;

type Slot = { owner: Record<string, unknown> | unknown[]; key: string | number };

export abstract class Module {
  /** Training mode (dropout active, BatchNorm uses batch statistics). */
  training = true;

  /** Child modules by field name (arrays of modules are numbered, as nn.ModuleList / Sequential). */
  namedChildren(): [string, Module][] {
    const out: [string, Module][] = [];
    for (const [key, value] of Object.entries(this)) {
      if (value instanceof Module) out.push([key, value]);
      else if (Array.isArray(value)) value.forEach((v, i) => v instanceof Module && out.push([`${key}.${i}`, v]));
    }
    return out;
  }

  /** Every module in the tree, pre-order, with its dotted path ('' for this one). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.namedChildren()) out.push(...child.namedModules(prefix ? `${prefix}.${name}` : name));
    return out;
  }

  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  /** This module's own tensor fields (parameters first, then buffers, as PyTorch orders a state dict). */
  private ownTensors(): { name: string; tensor: Tensor; slot: Slot; isBuffer: boolean }[] {
    const params: { name: string; tensor: Tensor; slot: Slot; isBuffer: boolean }[] = [];
    const buffers: typeof params = [];
    for (const [key, value] of Object.entries(this)) {
      if (isTensorValue(value))
        (isBuffer(value) ? buffers : params).push({
          name: key,
          tensor: value,
          slot: { owner: this as unknown as Record<string, unknown>, key },
          isBuffer: isBuffer(value),
        });
    }
    return [...params, ...buffers];
  }

  private walk(visit: (name: string, tensor: Tensor, slot: Slot, isBuffer: boolean) => void): void {
    for (const [path, module] of this.namedModules()) {
      for (const own of module.ownTensors()) visit(path ? `${path}.${own.name}` : own.name, own.tensor, own.slot, own.isBuffer);
    }
  }

  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    this.walk((name, t, _slot, isBuf) => !isBuf && out.push([name, t]));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Parameters that currently require gradients (not frozen). */
  trainableParameters(): Tensor[] {
    return this.parameters().filter((p) => p.requiresGrad);
  }

  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    this.walk((name, t, _slot, isBuf) => isBuf && out.push([name, t]));
    return out;
  }

  /** Parameters and buffers by dotted name, in PyTorch's state_dict order. The tensors are the live ones. */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    this.walk((name, t) => out.set(name, t));
    return out;
  }

  /**
   * Copies values into the parameters and buffers. strict: every name must match both ways and every
   * shape must agree; the error lists what is missing, unexpected or mis-shaped.
   */
  loadStateDict(state: Map<string, Tensor>, opts: { strict?: boolean } = {}): void {
    const strict = opts.strict ?? true;
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !state.has(k));
    const unexpected = [...state.keys()].filter((k) => !own.has(k));
    const misshaped: string[] = [];
    for (const [name, t] of own) {
      const src = state.get(name);
      if (src && src.shape.join(',') !== t.shape.join(',')) misshaped.push(`${name}: expected [${t.shape.join(', ')}], got [${src.shape.join(', ')}]`);
    }
    const problems = [
      ...(strict && missing.length ? [`missing: ${missing.join(', ')}`] : []),
      ...(strict && unexpected.length ? [`unexpected: ${unexpected.join(', ')}`] : []),
      ...(misshaped.length ? [`wrong shapes: ${misshaped.join('; ')}`] : []),
    ];
    if (problems.length) throw new Error(`state dict does not fit ${this.constructor.name}: ${problems.join(' | ')}`);
    noGrad(() => {
      for (const [name, t] of own) {
        const src = state.get(name);
        if (src) copyInPlace(t, src);
      }
    });
  }

  /** Sets training mode on this module and every descendant. */
  train(on = true): this {
    for (const m of this.modules()) m.training = on;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Clears every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** Replaces each tensor field by map(tensor), keeping its role (parameter or buffer). */
  private remapTensors(map: (t: Tensor) => Tensor): void {
    this.walk((_name, t, slot, isBuf) => {
      // tidy frees map(t) itself; only its detached alias survives.
      const next = tidy(() => noGrad(() => map(t).detach()));
      if (isBuf) buffer(next);
      else {
        parameter(next);
        next.requiresGrad = t.requiresGrad;
      }
      (slot.owner as Record<string | number, unknown>)[slot.key] = next;
      t.dispose();
    });
  }

  /** Moves parameters and buffers to a device ('cpu', 'cuda:0'; see torch/runtime.ts resolveDevice). */
  to(device: string): this {
    this.remapTensors((t) => toDevice(t, device));
    return this;
  }

  /**
   * Stores 4-D weights in channels_last layout (faster 2-D convolutions on CPU with oneDNN), with
   * channels_last strides even for a one-input-channel stem, as PyTorch's `.to(memory_format=...)`.
   */
  channelsLast(): this {
    this.remapTensors((t) => (t.ndim === 4 ? cloneAs(t, 'channelsLast') : t.clone()));
    return this;
  }

  /** Number of trainable scalars. */
  parameterCount(): number {
    return this.parameters().reduce((n, p) => n + p.numel, 0);
  }

  /** Frees every parameter and buffer. The module cannot be used afterwards. */
  dispose(): void {
    for (const t of this.stateDict().values()) t.dispose();
  }
}

/** A module with one tensor in and one out: what Sequential chains. */
export interface Layer {
  forward(x: Tensor): Tensor;
}

export type LayerModule = Module & Layer;
