// Neuron zones from loss changes (GN-FT paper Section III-B, eqs. 1-2, Fig. 3; specs/defenses.md 1.6):
//   CLC_n = E_Dc[ L(F(x; θ | θ_n = 0), y) - L(F(x; θ), y) ]          on the defender's clean clips,
//   BLC_n = E_Dc[ L(F(δ(x); θ | θ_n = 0), y_t) - L(F(δ(x); θ), y_t) ] on their triggered copies, labels = target,
// in eval mode, E = the mean over clips. Zones by the signs: clean (CLC > 0, BLC <= 0), backdoor (BLC > 0,
// CLC <= 0), hybrid (both > 0), redundant (neither).
//
// Cost. Pruning neuron n (its weights and bias set to 0) makes output channel n of its layer exactly 0 and
// changes nothing else, so instead of one evaluation per pruned copy of the model, the batched method runs K
// neurons at once: the batch is repeated K times at the input of an enclosing module, and a hook on the
// layer zeroes channel n_k in copy k. Everything before that module runs once per batch, not once per
// neuron (for the ResNet's conv2d the repeat sits at conv2d itself, so only conv2d -> fc runs per neuron).
// The enclosing module is the deepest one for which this is valid (a module's forward sees only its
// input, but its parent may combine the output with tensors of the original batch, which fails, or
// broadcasts harmlessly); each layer's choice is checked once against the exact method (weights really
// zeroed, then restored bit for bit) on two neurons before it is trusted. LSTM units, layers whose
// weights are not applied through their module's forward (attention's out_proj) and any failed check
// fall back to the exact method. Nothing ever changes the model's weights outside withNeuronZeroed.
import { batchIndices, type FeatureSet, gatherBatch } from '../data/feature-set.ts';
import { type NeuronLayer, resolveNeuronLayer, withNeuronZeroed } from '../models/neurons.ts';
import type { KwsModel } from '../models/registry.ts';
import { type Module, withForwardHook } from '../nn/index.ts';
import { crossEntropy, full, noGrad, repeat, type Tensor, tensor, tidy } from '../torch/index.ts';

export type Zone = 'clean' | 'backdoor' | 'hybrid' | 'redundant';
export const zoneNames: readonly Zone[] = ['clean', 'backdoor', 'hybrid', 'redundant'];

/**
 * The zone of a neuron from its loss changes; a change within ±tolerance counts as 0 (float32 rounding
 * differs between a batched and a plain forward by ~1e-7, and a dead neuron's true change is exactly 0).
 */
export function zoneOf(clc: number, blc: number, tolerance = 0): Zone {
  const c = clc > tolerance;
  const b = blc > tolerance;
  if (c && b) return 'hybrid';
  if (c) return 'clean';
  if (b) return 'backdoor';
  return 'redundant';
}

export function zoneCounts(zones: readonly Zone[]): Record<Zone, number> {
  const counts: Record<Zone, number> = { clean: 0, backdoor: 0, hybrid: 0, redundant: 0 };
  for (const z of zones) counts[z]++;
  return counts;
}

export interface LossChangeOptions {
  /** clips per forward (default 32) */
  batchSize?: number;
  /** rows (clips x neuron copies) per batched forward (default 512): bounds memory */
  rowsPerForward?: number;
  /** 'auto' (batched where it checks out, exact elsewhere) or 'exact' everywhere (default 'auto') */
  method?: 'auto' | 'exact';
  /** loss changes within ±tolerance count as 0 for zones (default 1e-6 nats) */
  zeroTolerance?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface NeuronLossChange {
  layer: string;
  index: number;
  clc: number;
  /** absent without a triggered set */
  blc?: number;
  zone?: Zone;
}

export interface LossChanges {
  neurons: NeuronLossChange[];
  /** per layer: 'exact', or 'batched@<module>' (the module whose input was repeated; '' is the model) */
  methods: Record<string, string>;
  baseline: { clean: number; backdoor?: number };
}

/** A set to measure on: features and the labels the loss uses (true labels, or the target for all). */
interface Probe {
  set: FeatureSet;
  labels: Tensor;
  size: number;
}

function probeOf(set: FeatureSet, targetLabel?: number): Probe {
  const labels = targetLabel === undefined ? set.labels : full([set.size], targetLabel, { dtype: 'int64' });
  if (targetLabel !== undefined) labels.persistent = true;
  return { set, labels, size: set.size };
}

function disposeProbe(p: Probe): void {
  if (p.labels !== p.set.labels) p.labels.dispose();
}

/** Sum of the per-clip cross-entropy of the model over the clips at `indices`. */
function lossSum(model: KwsModel, p: Probe, indices: number[]): number {
  return tidy(() => {
    const { x } = gatherBatch(p.set, indices);
    const y = p.labels.narrow(0, indices[0], indices.length);
    return crossEntropy(model.forward(x), y, { reduction: 'sum' }).item();
  });
}

/** Batches are runs of consecutive indices (so labels are a narrow, not a gather). */
const batchesOf = (size: number, batchSize: number) => batchIndices(size, batchSize);

function meanLoss(model: KwsModel, p: Probe, batchSize: number): number {
  let total = 0;
  for (const indices of batchesOf(p.size, batchSize)) total += lossSum(model, p, indices);
  return total / p.size;
}

/** Module paths enclosing `layer`, deepest first, ending with '' (the model itself). */
function enclosingPaths(layer: string): string[] {
  const parts = layer.split('.');
  const out: string[] = [];
  for (let k = parts.length; k >= 1; k--) out.push(parts.slice(0, k).join('.'));
  out.push('');
  return out;
}

type AnyForward = (...args: unknown[]) => Tensor;

const repeatBatch = (x: Tensor, copies: number) => repeat(x, [copies, ...x.shape.slice(1).map(() => 1)]);

/** Runs fn with `module`'s input repeated `copies` times along the batch (copy k = rows k*B .. k*B+B-1). */
function withInputRepeated<T>(module: Module, copies: number, counter: { calls: number }, fn: () => T): T {
  const target = module as unknown as { forward: AnyForward };
  const hadOwn = Object.hasOwn(target, 'forward');
  const previous = target.forward;
  target.forward = (...args: unknown[]) => {
    counter.calls++;
    const x = args[0] as Tensor;
    let repeated = repeatBatch(x, copies);
    if (x.ndim === 4 && x.isChannelsLast) repeated = repeated.contiguous('channelsLast');
    return previous.call(module, repeated, ...args.slice(1));
  };
  try {
    return fn();
  } finally {
    if (hadOwn) target.forward = previous;
    else delete (target as Partial<typeof target>).forward;
  }
}

/** A multiplier that zeroes neuron group[k] in copy k of an output with `rows` = copies x batch rows. */
function groupMask(output: Tensor, layer: NeuronLayer, group: readonly number[], batch: number): Tensor {
  const rows = group.length * batch;
  const channels = layer.size;
  const data = new Float32Array(rows * channels).fill(1);
  group.forEach((n, k) => {
    for (let i = 0; i < batch; i++) data[(k * batch + i) * channels + n] = 0;
  });
  if (layer.kind === 'conv') {
    if (output.shape[0] !== rows || output.shape[1] !== channels) throw new Error('unexpected conv output');
    return tensor(data, [rows, channels, ...output.shape.slice(2).map(() => 1)]);
  }
  // Linear: units on the last dim, the batch on dim 0 (batch-first) or dim 1 (sequence-first).
  if (output.shape[output.ndim - 1] !== channels) throw new Error('unexpected linear output');
  if (output.shape[0] === rows) return tensor(data, [rows, ...output.shape.slice(1, -1).map(() => 1), channels]);
  if (output.ndim >= 3 && output.shape[1] === rows) return tensor(data, [1, rows, ...output.shape.slice(2, -1).map(() => 1), channels]);
  throw new Error('no batch dimension found in the linear output');
}

/**
 * Per-copy loss sums [group.length] of the clips at `indices`, with neuron group[k] zeroed in copy k,
 * by repeating the batch at `at` (a module path; '' = the model's input).
 */
function batchedLossSums(model: KwsModel, layer: NeuronLayer, at: string, group: readonly number[], p: Probe, indices: number[]): number[] {
  const copies = group.length;
  const b = indices.length;
  const atModule = at === '' ? null : (model.namedModules().find(([n]) => n === at)?.[1] ?? null);
  const layerModule = layer.module as Module;
  const repeats = { calls: 0 };
  let masked = 0;
  const sums = tidy(() => {
    const { x } = gatherBatch(p.set, indices);
    const y = repeat(p.labels.narrow(0, indices[0], b), [copies]);
    const forward = () =>
      withForwardHook(
        layerModule,
        (out) => {
          masked++;
          return out.mul(groupMask(out, layer, group, b));
        },
        () => model.forward(atModule ? x : repeatBatch(x, copies)),
      );
    const logits = atModule ? withInputRepeated(atModule, copies, repeats, forward) : forward();
    if (logits.shape[0] !== copies * b) throw new Error(`batched forward gave ${logits.shape[0]} rows, expected ${copies * b}`);
    return crossEntropy(logits, y, { reduction: 'none' }).reshape([copies, b]).sum(1).toArray();
  });
  if (masked !== 1 || (atModule && repeats.calls !== 1)) throw new Error(`hooks fired ${masked} and ${repeats.calls} times, expected once`);
  return sums;
}

/** Close enough to be the same float32 sum of a batch's losses. */
const agrees = (a: number, b: number) => Math.abs(a - b) <= 1e-4 + 1e-4 * Math.abs(b);

/**
 * The deepest enclosing module where the batched method reproduces the exact one (checked on two
 * neurons of the first batch), or null when none does.
 */
function batchedPoint(model: KwsModel, layer: NeuronLayer, p: Probe, indices: number[], copies: number): string | null {
  if (layer.kind === 'lstm' || !layer.module) return null;
  const group = Array.from({ length: Math.min(copies, layer.size) }, (_, k) => k);
  const checked = [0, group.length - 1];
  const exact = checked.map((n) => withNeuronZeroed(layer, n, () => lossSum(model, p, indices)));
  for (const at of enclosingPaths(layer.name)) {
    try {
      const sums = batchedLossSums(model, layer, at, group, p, indices);
      if (checked.every((n, k) => agrees(sums[n], exact[k]))) return at;
    } catch (e) {
      if (e instanceof TypeError || e instanceof ReferenceError) throw e;
      // not a valid place to repeat the batch (shapes do not combine): try the next one up
    }
  }
  return null;
}

/**
 * CLC (and, given the triggered copies and the target, BLC) of every neuron of `layers`, in eval mode
 * (the model's mode is restored; its weights are never left changed).
 */
export function lossChanges(
  model: KwsModel,
  layers: readonly string[],
  clean: FeatureSet,
  backdoor?: { set: FeatureSet; targetLabel: number },
  opts: LossChangeOptions = {},
): LossChanges {
  if (clean.size === 0) throw new Error('loss changes need at least one clean clip');
  const batchSize = opts.batchSize ?? 32;
  const rowsPerForward = opts.rowsPerForward ?? 512;
  const tolerance = opts.zeroTolerance ?? 1e-6;
  const resolved = layers.map((name) => resolveNeuronLayer(model, name));
  const total = resolved.reduce((n, l) => n + l.size, 0);
  const probes = [probeOf(clean), ...(backdoor ? [probeOf(backdoor.set, backdoor.targetLabel)] : [])];
  const wasTraining = model.training;
  model.eval();
  try {
    return noGrad(() => {
      const base = probes.map((p) => meanLoss(model, p, batchSize));
      const neurons: NeuronLossChange[] = [];
      const methods: Record<string, string> = {};
      let done = 0;
      for (const layer of resolved) {
        const changes = probes.map(() => new Float64Array(layer.size));
        const first = batchesOf(probes[0].size, batchSize)[0];
        const copies = Math.max(1, Math.floor(rowsPerForward / first.length));
        const at = opts.method === 'exact' ? null : batchedPoint(model, layer, probes[0], first, copies);
        methods[layer.name] = at === null ? 'exact' : `batched@${at}`;
        if (at === null) {
          for (let n = 0; n < layer.size; n++) {
            withNeuronZeroed(layer, n, () => probes.forEach((p, k) => (changes[k][n] = meanLoss(model, p, batchSize) - base[k])));
            opts.onProgress?.(++done, total);
          }
        } else {
          for (let start = 0; start < layer.size; start += copies) {
            const group = Array.from({ length: Math.min(copies, layer.size - start) }, (_, k) => start + k);
            probes.forEach((p, k) => {
              const sums = new Float64Array(group.length);
              for (const indices of batchesOf(p.size, batchSize)) {
                batchedLossSums(model, layer, at, group, p, indices).forEach((s, j) => (sums[j] += s));
              }
              group.forEach((n, j) => (changes[k][n] = sums[j] / p.size - base[k]));
            });
            done += group.length;
            opts.onProgress?.(done, total);
          }
        }
        for (let n = 0; n < layer.size; n++) {
          const clc = changes[0][n];
          const blc = backdoor ? changes[1][n] : undefined;
          neurons.push({ layer: layer.name, index: n, clc, ...(blc !== undefined ? { blc, zone: zoneOf(clc, blc, tolerance) } : {}) });
        }
      }
      return { neurons, methods, baseline: { clean: base[0], ...(backdoor ? { backdoor: base[1] } : {}) } };
    });
  } finally {
    probes.forEach(disposeProbe);
    model.train(wasTraining);
  }
}
