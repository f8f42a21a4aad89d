// SGD with momentum, dampening, Nesterov and weight decay, as torch.optim.SGD (torch 1.13).
import { add, clone, dispose, mul, type Tensor } from '../../torch/index.ts';
import { foreachAdd, foreachMul } from './foreach.ts';
import { type Optimizer, optimizerOf } from './optimizer.ts';

export interface SgdOptions {
  lr?: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

export function sgd(params: Tensor[], opts: SgdOptions = {}): Optimizer {
  const momentum = opts.momentum ?? 0;
  const dampening = opts.dampening ?? 0;
  const nesterov = opts.nesterov ?? false;
  const weightDecay = opts.weightDecay ?? 0;
  if (nesterov && (momentum <= 0 || dampening !== 0)) throw new Error('SGD: Nesterov momentum needs momentum > 0 and dampening 0');
  const buffers: (Tensor | undefined)[] = params.map(() => undefined);

  return optimizerOf(params, opts.lr ?? 1e-3, {
    update(found, lr) {
      const grads = weightDecay !== 0 ? found.grads.map((g, k) => add(g, found.params[k], weightDecay)) : found.grads;
      if (momentum !== 0) {
        const fresh: number[] = [];
        const old: number[] = [];
        found.indices.forEach((i, k) => (buffers[i] ? old : fresh).push(k));
        for (const k of fresh) {
          const b = clone(grads[k]);
          b.persistent = true;
          buffers[found.indices[k]] = b;
        }
        if (old.length) {
          const oldBuffers = old.map((k) => buffers[found.indices[k]] as Tensor);
          foreachMul(oldBuffers, momentum);
          foreachAdd(
            oldBuffers,
            old.map((k) => grads[k]),
            1 - dampening,
          );
        }
        const bufs = found.indices.map((i) => buffers[i] as Tensor);
        const directions = nesterov ? grads.map((g, k) => add(g, bufs[k], momentum)) : bufs;
        foreachAdd(found.params, directions, -lr);
        if (nesterov) dispose(directions);
      } else {
        foreachAdd(found.params, grads, -lr);
      }
      if (grads !== found.grads) dispose(grads);
      dispose(found.grads);
    },
    dispose() {
      buffers.forEach((b, i) => {
        b?.dispose();
        buffers[i] = undefined;
      });
    },
    stateDict() {
      const out = new Map<string, Tensor>();
      buffers.forEach((b, i) => b && out.set(`${i}.momentum_buffer`, b));
      return out;
    },
    loadStateDict(saved) {
      params.forEach((_p, i) => {
        const b = saved.get(`${i}.momentum_buffer`);
        if (b) {
          buffers[i]?.dispose();
          const copy = mul(b, 1);
          copy.persistent = true;
          buffers[i] = copy;
        }
      });
    },
  });
}
