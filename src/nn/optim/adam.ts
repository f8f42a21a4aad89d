// Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), numerically as torch.optim.Adam /
// AdamW of torch 1.13 (bias-corrected, eps added after the square root).
import { add, dispose, mul, type Tensor, tensor, zerosLike } from '../../torch/index.ts';
import { foreachAdd, foreachAddcdiv, foreachAddcmul, foreachAddScalar, foreachDivScalar, foreachMul, foreachSqrt } from './foreach.ts';
import { type Optimizer, optimizerOf } from './optimizer.ts';

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  /** Adam: L2 penalty added to the gradient; AdamW: decoupled decay of the weights */
  weightDecay?: number;
}

interface Moments {
  step: number;
  expAvg: Tensor;
  expAvgSq: Tensor;
}

function makeAdam(params: Tensor[], opts: AdamOptions, decoupled: boolean, defaultDecay: number): Optimizer {
  const [beta1, beta2] = opts.betas ?? [0.9, 0.999];
  const eps = opts.eps ?? 1e-8;
  const weightDecay = opts.weightDecay ?? defaultDecay;
  const state: (Moments | undefined)[] = params.map(() => undefined);

  return optimizerOf(params, opts.lr ?? 1e-3, {
    update(found, lr) {
      const moments = found.indices.map((i, k) => {
        let s = state[i];
        if (!s) {
          s = { step: 0, expAvg: keepState(zerosLike(found.params[k])), expAvgSq: keepState(zerosLike(found.params[k])) };
          state[i] = s;
        }
        s.step += 1;
        return s;
      });
      let grads = found.grads;
      if (weightDecay !== 0 && decoupled) foreachMul(found.params, 1 - lr * weightDecay);
      if (weightDecay !== 0 && !decoupled) grads = grads.map((g, k) => add(g, found.params[k], weightDecay));
      const expAvg = moments.map((m) => m.expAvg);
      const expAvgSq = moments.map((m) => m.expAvgSq);
      foreachMul(expAvg, beta1);
      foreachAdd(expAvg, grads, 1 - beta1);
      foreachMul(expAvgSq, beta2);
      foreachAddcmul(expAvgSq, grads, grads, 1 - beta2);
      // Parameters may have different step counts (one that had no gradient for a while); group by step.
      const groups = new Map<number, number[]>();
      moments.forEach((m, k) => groups.set(m.step, [...(groups.get(m.step) ?? []), k]));
      for (const [step, ks] of groups) {
        const biasCorrection1 = 1 - beta1 ** step;
        const biasCorrection2 = 1 - beta2 ** step;
        const denom = foreachSqrt(ks.map((k) => expAvgSq[k]));
        foreachDivScalar(denom, Math.sqrt(biasCorrection2));
        foreachAddScalar(denom, eps);
        foreachAddcdiv(
          ks.map((k) => found.params[k]),
          ks.map((k) => expAvg[k]),
          denom,
          -lr / biasCorrection1,
        );
        dispose(denom);
      }
      dispose(found.grads, grads);
    },
    dispose() {
      state.forEach((s, i) => {
        if (s) dispose(s.expAvg, s.expAvgSq);
        state[i] = undefined;
      });
    },
    stateDict() {
      const out = new Map<string, Tensor>();
      state.forEach((s, i) => {
        if (!s) return;
        // a fresh tensor, owned by the caller's scope
        out.set(`${i}.step`, tensor([s.step], [], { dtype: 'float64' }));
        out.set(`${i}.exp_avg`, s.expAvg);
        out.set(`${i}.exp_avg_sq`, s.expAvgSq);
      });
      return out;
    },
    loadStateDict(saved) {
      params.forEach((p, i) => {
        const step = saved.get(`${i}.step`);
        const expAvg = saved.get(`${i}.exp_avg`);
        const expAvgSq = saved.get(`${i}.exp_avg_sq`);
        if (!step || !expAvg || !expAvgSq) return;
        if (state[i]) dispose(state[i]?.expAvg, state[i]?.expAvgSq);
        if (expAvg.shape.join() !== p.shape.join())
          throw new Error(`optimizer state ${i}.exp_avg has shape [${expAvg.shape}] but parameter ${i} has [${p.shape}]: the state belongs to another model`);
        state[i] = { step: step.item(), expAvg: keepState(mul(expAvg, 1)), expAvgSq: keepState(mul(expAvgSq, 1)) };
      });
    },
  });
}

function keepState(t: Tensor): Tensor {
  t.persistent = true;
  return t;
}

/** Adam; weightDecay (default 0) is an L2 term added to the gradient. */
export const adam = (params: Tensor[], opts: AdamOptions = {}): Optimizer => makeAdam(params, opts, false, 0);

/** AdamW; weightDecay (default 0.01, as torch.optim.AdamW) decays the weights directly. */
export const adamW = (params: Tensor[], opts: AdamOptions = {}): Optimizer => makeAdam(params, opts, true, 0.01);
