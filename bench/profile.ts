// npx tsx bench/profile.ts [-- --model resnet --batch N --steps N --threads N --case train|gnft|eval --shapes
//                              --torchscript FILE --channels-last]
// Where a step's time goes: libtorch's own profiler (torch.profileOps) around N steps of a model from the zoo,
// printed as a table of ATen ops by self time per step. --shapes splits rows by input shapes and calling op,
// which is how a layout conversion (aten::contiguous <- aten::_convolution) or a stray copy shows up. The same
// events come from PyTorch's `torch.autograd.profiler.profile(use_kineto=False, record_shapes=True)`, so the op
// lists compare (PyTorch's profiler slows PyTorch itself a lot on these VMs: compare ops and counts, not times).
// --torchscript FILE profiles a TorchScript archive of the model instead (as a user's own model runs: e.g. the
// reference ResNet from bench/export_torchscript_resnet.py), so its op list compares with the built-in's.
import { parseArgs } from 'node:util';
import { gradNormPenaltyStep } from '../src/defenses/gnft-step.ts';
import { buildModel, getModelSpec } from '../src/models/index.ts';
import { loadTorchScriptModel } from '../src/models/torchscript.ts';
import { adamW, sgd } from '../src/nn/index.ts';
import { trainStep } from '../src/nn/train-step.ts';
import { crossEntropy, keep, manualSeed, noGrad, profileOps, randint, randn, setNumThreads, tidy } from '../src/torch/index.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'resnet' },
    batch: { type: 'string', default: '128' },
    steps: { type: 'string', default: '3' },
    threads: { type: 'string', default: '2' },
    case: { type: 'string', default: 'train' },
    shapes: { type: 'boolean', default: false },
    top: { type: 'string', default: '25' },
    torchscript: { type: 'string' },
    'channels-last': { type: 'boolean', default: false },
  },
});
const [batch, steps, threads, top] = [values.batch, values.steps, values.threads, values.top].map(Number);
for (const [name, v] of Object.entries({ batch, steps, threads, top })) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer, got '${values[name as keyof typeof values]}'`);
}
if (!['train', 'gnft', 'eval'].includes(values.case)) throw new Error(`--case must be train, gnft or eval, got '${values.case}'`);

setNumThreads(threads);
manualSeed(0);
const classes = 10;
const model = values.torchscript ? loadTorchScriptModel(values.torchscript).train() : buildModel(values.model, { classes }).train();
// a spectrogram input as [batch, 1, time, mel] (what the built-in ResNet and the archive both take), for channels_last
const shape = getModelSpec(values.model).inputShape;
let x = keep(randn(values.torchscript || values['channels-last'] ? [batch, 1, ...shape] : [batch, ...shape]));
if (values['channels-last']) {
  model.channelsLast();
  const contiguous = x;
  x = keep(x.contiguous('channelsLast'));
  contiguous.dispose();
}
const y = keep(randint(0, classes, [batch]));
const lossFn = () => crossEntropy(model.forward(x), y);
const optimizer = values.case === 'gnft' ? sgd(model.parameters(), { lr: 1e-3, momentum: 0.9 }) : adamW(model.parameters());
if (values.case === 'eval') model.eval();
const step = {
  train: () => void trainStep(optimizer, lossFn),
  gnft: () => void gradNormPenaltyStep(model, optimizer, lossFn, { r: 0.05, alpha: 0.7, normalization: 'per-tensor' }),
  eval: () => noGrad(() => tidy(() => void model.forward(x))),
}[values.case as 'train' | 'gnft' | 'eval'];
step();
step();
const started = performance.now();
const { ops } = profileOps(
  () => {
    for (let i = 0; i < steps; i++) step();
  },
  { withShapes: values.shapes },
);
const wall = (performance.now() - started) / steps;
const perStep = (us: number) => (us / steps / 1000).toFixed(1);
console.log(
  `${values.torchscript ? `${values.model} (TorchScript ${values.torchscript})` : values.model} ${values.case}, batch ${batch}, ${threads} threads: ${wall.toFixed(0)} ms per step under the profiler`,
);
console.log(`${'op'.padEnd(100)} ${'calls'.padStart(6)} ${'self ms'.padStart(9)} ${'total ms'.padStart(9)}`);
for (const o of ops.slice(0, top)) {
  console.log(`${o.name.slice(0, 100).padEnd(100)} ${String(o.calls / steps).padStart(6)} ${perStep(o.selfUs).padStart(9)} ${perStep(o.totalUs).padStart(9)}`);
}
optimizer.dispose();
model.dispose();
x.dispose();
y.dispose();
