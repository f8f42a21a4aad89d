// NGF: its EKFAC step against a dense Fisher matrix built and inverted by hand on a Linear small enough
// (3 inputs -> 2 outputs with bias: 8 parameters, an 8 x 8 Fisher); per-sample gradients of conv and sequence
// layers against autograd; the defense changes only its layer.
//
// What is compared with what. Row-major vec over the gradient matrix [out, in + 1] (bias last), EKFAC's step
// is V = F^-1 vec(P) with F = K diag(vec(S) + damping) K^T, K = Qg (x) Qa, where Qa, Qg are the eigenvectors
// of the Kronecker factors at the last eigendecomposition and S the eigenbasis scales. Right after a
// decomposition S = dg da^T, so F = G (x) A + damping I: K-FAC's Fisher with the damping on its eigenvalues
// (checked at step 0, with A and G built here from the batch, EMA'd from the identity). After a scale update
// S is the EMA of mean_n (Qg^T dW_n Qa)^2 (per-sample gradients dW_n = e_n a_n^T) and F is no longer a
// Kronecker product (checked at step 1, K still from step 0's factors). Everything in float64.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bandedClips as toySet, twoRunsNoLeak } from '../../test/helpers/defense-toys.ts';
import { disposeFeatureSet } from '../data/feature-set.ts';
import type { KwsModel } from '../models/registry.ts';
import { BatchNorm2d, Conv1d, Conv2d, Linear, Module, parameter, sgd } from '../nn/index.ts';
import { avgPool2d, crossEntropy, dispose, eigh, grad, keep, manualSeed, pad, randn, sum, type Tensor, tensor, tidy } from '../torch/index.ts';
import { releaseMultiStepSchedule } from './fine-tune.ts';
import { type EkfacSettings, ekfacState, getDefense, layerGeometry, type ModelInfo, naturalGradientStep, perSampleGradients } from './index.ts';

// ---------------------------------------------------------------------------------------------------------
// Dense linear algebra in float64, by hand.

type Matrix = number[][];
const zerosM = (r: number, c: number): Matrix => Array.from({ length: r }, () => new Array(c).fill(0));
const identity = (n: number): Matrix => zerosM(n, n).map((row, i) => row.map((_, j) => (i === j ? 1 : 0)));
const kron = (a: Matrix, b: Matrix): Matrix =>
  zerosM(a.length * b.length, a[0].length * b[0].length).map((row, i) =>
    row.map((_, j) => a[Math.floor(i / b.length)][Math.floor(j / b[0].length)] * b[i % b.length][j % b[0].length]),
  );
const matmulM = (a: Matrix, b: Matrix): Matrix => a.map((row) => b[0].map((_, j) => row.reduce((s, v, k) => s + v * b[k][j], 0)));
const transposeM = (a: Matrix): Matrix => a[0].map((_, j) => a.map((row) => row[j]));
const addM = (a: Matrix, b: Matrix, wa = 1, wb = 1): Matrix => a.map((row, i) => row.map((v, j) => wa * v + wb * b[i][j]));

/** Solves F v = g by Gaussian elimination with partial pivoting. */
function solve(f: Matrix, g: number[]): number[] {
  const n = g.length;
  const a = f.map((row, i) => [...row, g[i]]);
  for (let c = 0; c < n; c++) {
    let pivot = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r][c]) > Math.abs(a[pivot][c])) pivot = r;
    [a[c], a[pivot]] = [a[pivot], a[c]];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const factor = a[r][c] / a[c][c];
      for (let k = c; k <= n; k++) a[r][k] -= factor * a[c][k];
    }
  }
  return a.map((row, i) => row[n] / row[i]);
}

/** Per-sample inputs a_n = [x_n, 1], output gradients e_n = softmax(W a_n) - onehot(y_n), and the batch-mean gradient. */
function linearStatistics(w: Matrix, x: Matrix, y: number[]) {
  const a = x.map((row) => [...row, 1]);
  const e = a.map((an, n) => {
    const z = w.map((wi) => wi.reduce((s, v, k) => s + v * an[k], 0));
    const top = Math.max(...z);
    const exps = z.map((v) => Math.exp(v - top));
    const total = exps.reduce((s, v) => s + v, 0);
    return exps.map((v, i) => v / total - (i === y[n] ? 1 : 0));
  });
  const batch = x.length;
  const outer = (u: number[], v: number[]): Matrix => u.map((ui) => v.map((vj) => ui * vj));
  const mean = (ms: Matrix[]) => ms.reduce((s, m) => addM(s, m, 1, 1 / batch), zerosM(ms[0].length, ms[0][0].length));
  return {
    a,
    e,
    gradient: mean(a.map((an, n) => outer(e[n], an))),
    aHat: mean(a.map((an) => outer(an, an))),
    gHat: mean(e.map((en) => outer(en, en))),
    perSample: a.map((an, n) => outer(e[n], an)),
  };
}

const vec = (m: Matrix) => m.flat();

class TinyLinear extends Module {
  fc = new Linear(3, 2);
  forward(x: Tensor): Tensor {
    return this.fc.forward(x);
  }
}

function tinySetup() {
  const w0 = [
    [0.3, -0.2, 0.5],
    [-0.4, 0.1, 0.25],
  ];
  const b0 = [0.1, -0.05];
  const x = [
    [1.0, 0.5, -0.3],
    [-0.7, 1.2, 0.4],
    [0.2, -0.9, 1.1],
    [1.5, 0.3, 0.8],
    [-1.1, -0.4, 0.6],
    [0.6, 0.9, -1.2],
  ];
  const y = [0, 1, 1, 0, 1, 0];
  const model = new TinyLinear();
  model.fc.weight.dispose();
  (model.fc.bias as Tensor).dispose();
  model.fc.weight = parameter(tensor(w0.flat(), [2, 3], { dtype: 'float64' }));
  model.fc.bias = parameter(tensor(b0, [2], { dtype: 'float64' }));
  const xs = keep(tensor(x.flat(), [6, 3], { dtype: 'float64' }));
  const ys = keep(tensor(BigInt64Array.from(y, BigInt)));
  const lossFn = () => crossEntropy(model.forward(xs), ys);
  const current = (): Matrix => {
    const w = model.fc.weight.toArray();
    const b = (model.fc.bias as Tensor).toArray();
    return [0, 1].map((i) => [...w.slice(3 * i, 3 * i + 3), b[i]]);
  };
  return { model, x, y, xs, ys, lossFn, current };
}

/** The layer's gradient as set by the step, row-major over [weight | bias]. */
function stepGradient(model: TinyLinear): number[] {
  const w = (model.fc.weight.grad as Tensor).toArray();
  const b = ((model.fc.bias as Tensor).grad as Tensor).toArray();
  return [0, 1].flatMap((i) => [...w.slice(3 * i, 3 * i + 3), b[i]]);
}

const settings = (o: Partial<EkfacSettings> = {}): EkfacSettings => ({
  damping: 1e-3,
  statDecay: 0.95,
  klClip: 1e6,
  tCov: 1,
  tInv: 100,
  tScal: 1,
  weightDecay: 0,
  ...o,
});

function assertClose(actual: number[], expected: number[], tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) <= tolerance * Math.max(1, Math.abs(expected[i])), `${what}[${i}]: ${v} vs ${expected[i]}`));
}

describe('ngf: the EKFAC step against a dense Fisher inverse', () => {
  it('step 0 (factors just decomposed): V = (G (x) A + damping I)^-1 g, scaled by the KL clip, then momentum SGD', () => {
    for (const klClip of [1e6, 1e-4]) {
      const t = tinySetup();
      const lr = 0.5;
      const s = linearStatistics(t.current(), t.x, t.y);
      const a0 = addM(identity(4), s.aHat, 0.95, 0.05);
      const g0 = addM(identity(2), s.gHat, 0.95, 0.05);
      const fisher = addM(kron(g0, a0), identity(8), 1, 1e-3);
      const v = solve(fisher, vec(s.gradient));
      const vg = v.reduce((acc, vi, i) => acc + vi * vec(s.gradient)[i], 0) * lr * lr;
      const nu = Math.min(1, Math.sqrt(klClip / vg));
      if (klClip < 1) assert.ok(nu < 1, 'the small clip is active');
      const state = ekfacState(t.model.fc);
      const before = vec(t.current());
      const optimizer = sgd(t.model.fc.parameters(), { lr, momentum: 0.9 });
      naturalGradientStep(t.model.fc, state, settings({ klClip }))(optimizer, t.lossFn);
      assertClose(
        stepGradient(t.model),
        v.map((vi) => nu * vi),
        1e-10,
        `preconditioned gradient (klClip ${klClip})`,
      );
      assertClose(
        vec(t.current()),
        before.map((w, i) => w - lr * nu * v[i]),
        1e-10,
        'weights after the first momentum step',
      );
      assert.equal(state.step.item(), 1);
      optimizer.dispose();
      dispose(Object.values(state), t.xs, t.ys);
      t.model.dispose();
    }
  });

  it('step 1 (after a scale update): V = (K diag(S + damping) K^T)^-1 g, K = Qg (x) Qa from step 0, S = EMA of (Qg^T dW_n Qa)^2', () => {
    const t = tinySetup();
    const lr = 0.5;
    const s0 = linearStatistics(t.current(), t.x, t.y);
    const a0 = addM(identity(4), s0.aHat, 0.95, 0.05);
    const g0 = addM(identity(2), s0.gHat, 0.95, 0.05);
    const state = ekfacState(t.model.fc);
    const optimizer = sgd(t.model.fc.parameters(), { lr, momentum: 0 });
    const step = naturalGradientStep(t.model.fc, state, settings());
    step(optimizer, t.lossFn);
    // step 1 sees the moved weights
    const s1 = linearStatistics(t.current(), t.x, t.y);
    const eig = (m: Matrix) =>
      tidy(() => {
        const e = eigh(tensor(m.flat(), [m.length, m.length], { dtype: 'float64' }));
        const q = e.vectors.toArray();
        return { d: e.values.toArray(), q: m.map((_, i) => m.map((__, j) => q[i * m.length + j])) };
      });
    const ea = eig(a0);
    const eg = eig(g0);
    const projected = s1.perSample.map((dw) => matmulM(matmulM(transposeM(eg.q), dw), ea.q));
    const scale = eg.d.map((dg, i) => ea.d.map((da, j) => 0.95 * dg * da + (0.05 * projected.reduce((acc, p) => acc + p[i][j] ** 2, 0)) / projected.length));
    const k = kron(eg.q, ea.q);
    const fisher = matmulM(
      matmulM(
        k,
        vec(scale).map((sv, i) => vec(scale).map((_, j) => (i === j ? sv + 1e-3 : 0))),
      ),
      transposeM(k),
    );
    const v = solve(fisher, vec(s1.gradient));
    step(optimizer, t.lossFn);
    assertClose(stepGradient(t.model), v, 1e-9, 'preconditioned gradient after the scale update');
    // and not the K-FAC step of the updated factors: the correction matters here
    const a1 = addM(a0, s1.aHat, 0.95, 0.05);
    const g1 = addM(g0, s1.gHat, 0.95, 0.05);
    const kfac = solve(addM(kron(g1, a1), identity(8), 1, 1e-3), vec(s1.gradient));
    assert.ok(
      kfac.some((vi, i) => Math.abs(vi - v[i]) > 1e-4),
      'EKFAC differs from K-FAC after a scale update',
    );
    optimizer.dispose();
    dispose(Object.values(state), t.xs, t.ys);
    t.model.dispose();
  });

  it('per-sample gradients of conv and sequence layers (im2col rows) add up to the autograd gradient', () => {
    manualSeed(3);
    const layers: [Module & { weight: Tensor; bias: Tensor | null; forward(x: Tensor): Tensor }, number[]][] = [
      [new Conv2d(3, 4, 3, { padding: 1, stride: 2 }), [5, 3, 7, 6]],
      [new Conv1d(3, 4, 3, { padding: 2, dilation: 2, stride: 2 }), [5, 3, 11]],
      [new Linear(3, 4), [5, 6, 3]],
    ];
    for (const [layer, shape] of layers) {
      tidy(() => {
        const x = randn(shape);
        const out = layer.forward(x);
        const loss = sum(out.square().mul(out.add(0.3).tanh()));
        const [gw, gb, gOut] = grad(loss, [layer.weight, layer.bias as Tensor, out]) as Tensor[];
        const geo = layerGeometry(layer as never);
        const total = perSampleGradients(geo.inputs(x), geo.outputGradients(gOut)).sum(0);
        const w = layer.weight.numel / layer.weight.size(0);
        assertClose(total.narrow(1, 0, w).reshape(layer.weight.shape).toArray(), gw.toArray(), 1e-4, `${layer.constructor.name} weight`);
        assertClose(total.select(1, w).toArray(), gb.toArray(), 1e-4, `${layer.constructor.name} bias`);
      });
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// The defense.

class ToyConv extends Module {
  conv1 = new Conv2d(1, 6, 3, { padding: 1 });
  bn1 = new BatchNorm2d(6);
  conv2 = new Conv2d(6, 8, 3, { padding: 1 });
  grouped = new Conv2d(8, 8, 1, { groups: 2 });
  fc = new Linear(8 * 4 * 4, 3);
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const h = this.grouped.forward(this.conv2.forward(this.bn1.forward(this.conv1.forward(x.unsqueeze(1))).relu()).relu());
      return this.fc.forward(avgPool2d(h, 2).flatten(1));
    });
  }
}

const info: ModelInfo = { name: 'toy', neuronLayers: ['conv1', 'conv2', 'grouped'] };
const ngf = getDefense('ngf');
const quick = { epochs: 3, batchSize: 16, tCov: 1, tScal: 2, tInv: 3 };
const arrays = (m: Module) => new Map([...m.stateDict()].map(([k, v]) => [k, Array.from(v.toFloat32Array())]));

describe('ngf', () => {
  for (const layer of ['classifier', 'conv2']) {
    it(`tunes only its layer (${layer}); the same seed gives the same weights; memory is flat`, async () => {
      const clean = toySet(60, 2);
      const runOnce = async () => {
        manualSeed(4);
        const model = new ToyConv() as unknown as KwsModel;
        const before = arrays(model);
        const report = await ngf.run(model, clean, { options: { ...ngf.recipes.default, ...quick, layer }, seed: 5, model: info });
        const after = arrays(model);
        model.dispose();
        return { before, after, report };
      };
      const { first, second } = await twoRunsNoLeak(runOnce);
      assert.deepEqual(second.after, first.after);
      const tuned = layer === 'classifier' ? 'fc' : layer;
      assert.equal(first.report.details.layer, tuned);
      assert.deepEqual([...first.after.keys()], [...first.before.keys()], 'no EKFAC state left in the state dict');
      for (const [name, values] of first.after) {
        if (name.startsWith(`${tuned}.`)) assert.notDeepEqual(values, first.before.get(name), `${name} is tuned`);
        else assert.deepEqual(values, first.before.get(name), `${name} untouched`);
      }
      disposeFeatureSet(clean);
    });
  }

  it('refuses layers it cannot tune, naming the option', async () => {
    const clean = toySet(30, 2);
    manualSeed(0);
    const model = new ToyConv() as unknown as KwsModel;
    await assert.rejects(
      ngf.run(model, clean, { options: { layer: 'nope' }, seed: 0, model: info }),
      /ngf: option layer must be .* the model has no module 'nope'/,
    );
    await assert.rejects(ngf.run(model, clean, { options: { layer: 'bn1' }, seed: 0, model: info }), /ngf: option layer: 'bn1' is a BatchNorm2d, not a Linear/);
    await assert.rejects(
      ngf.run(model, clean, { options: { layer: 'grouped' }, seed: 0, model: info }),
      /ngf: option layer: 'grouped' is a grouped convolution/,
    );
    await assert.rejects(ngf.run(model, clean, { options: { damping: 0 }, seed: 0, model: info }), /ngf: option damping must be a number > 0, got 0/);
    assert.ok(
      model.parameters().every((p) => p.requiresGrad),
      'nothing left frozen by a refused run',
    );
    model.dispose();
    disposeFeatureSet(clean);
  });

  it('the tuned layer must run once per forward', () => {
    const t = tinySetup();
    const state = ekfacState(t.model.fc);
    const optimizer = sgd(t.model.fc.parameters(), { lr: 0.1 });
    const twice = () => crossEntropy(t.model.fc.forward(pad(t.model.fc.forward(t.xs), [0, 1])), t.ys);
    assert.throws(() => naturalGradientStep(t.model.fc, state, settings())(optimizer, twice), /the tuned layer ran 2 times in one forward pass/);
    optimizer.dispose();
    dispose(Object.values(state), t.xs, t.ys);
    t.model.dispose();
  });

  it('paper recipe = the release (kr-anonymous/ngf-animus @f37e98f18f): steps drawn with replacement, its MultiStepLR, no Fisher term', async () => {
    const r = ngf.recipes.paper;
    assert.deepEqual(
      [r.steps, r.sampling, r.blockSteps, r.batchSize, r.lr, r.schedule, r.fisherWeight, r.timeShift, r.batchNorm, r.holdout],
      [500, 'replacement', 100, 128, 0.01, 'multistep', 0, 0.125, 'train', 0],
    );
    // MultiStepLR(milestones [int(0.35 * 5), int(0.75 * 5)] = [1, 3]) stepped before each of 5 blocks: 0.01 runs at 1e-3, 1e-3, 1e-4, 1e-4, 1e-4
    const rates = [0, 1, 2, 3, 4].map(releaseMultiStepSchedule(0.01, 5));
    assert.deepEqual(
      rates.map((v) => v.toExponential(3)),
      ['1.000e-3', '1.000e-3', '1.000e-4', '1.000e-4', '1.000e-4'],
    );
    const clean = toySet(12, 2);
    manualSeed(4);
    const model = new ToyConv() as unknown as KwsModel;
    let updates = 0;
    const report = await ngf.run(model, clean, {
      options: { ...r, ...quick, steps: 5, blockSteps: 1 },
      seed: 5,
      model: info,
      progress: {
        step(phase) {
          if (phase === 'ngf') updates += 1;
        },
      },
    });
    assert.equal(updates, 5);
    assert.deepEqual(
      report.epochs.map((e) => e.lr.toExponential(3)),
      rates.map((v) => v.toExponential(3)),
    );
    assert.equal(report.options.fisherWeight, 0);
    model.dispose();
    disposeFeatureSet(clean);
  });
});
