// npm run bench [-- --steps N --batch N --threads N --no-torch]
// The project's ResNet training step (Adam), GN-FT step (SGD momentum) and eval forward, beside the
// PyTorch reference run in the same invocation. One JSON line per case:
// {"case","ms_per_step","torch_ms_per_step","ratio"} (ratio = ours / PyTorch; < 1 is faster).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gradNormPenaltyStep } from '../src/defenses/gnft-step.ts';
import { ResNet } from '../src/models/resnet.ts';
import { adam, sgd } from '../src/nn/index.ts';
import { trainStep } from '../src/nn/train-step.ts';
import { crossEntropy, keep, manualSeed, memory, noGrad, randint, randn, setNumThreads, type Tensor, tidy } from '../src/torch/index.ts';
import { timed } from './timing.ts';
import { runTorchReference } from './torch-reference.ts';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '5' },
    batch: { type: 'string', default: '256' },
    threads: { type: 'string', default: '2' },
    'no-torch': { type: 'boolean', default: false },
    layout: { type: 'string', default: 'both' },
  },
});
const steps = Number(values.steps);
const batch = Number(values.batch);
const threads = Number(values.threads);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

type Layout = 'contiguous' | 'channelsLast';

function measureResNet(layout: Layout): Map<string, number> {
  manualSeed(0);
  const model = new ResNet().train();
  let x: Tensor = keep(randn([batch, 1, 101, 40]));
  if (layout === 'channelsLast') {
    model.channelsLast();
    const contiguousInput = x;
    x = keep(x.contiguous('channelsLast'));
    contiguousInput.dispose();
  }
  const y = keep(randint(0, 10, [batch]));
  const lossFn = () => crossEntropy(model.forward(x), y);
  const out = new Map<string, number>();
  const optimizer = adam(model.parameters(), { lr: 1e-4 });
  out.set(
    'resnet.train_step.adam',
    timed(() => trainStep(optimizer, lossFn), steps),
  );
  const momentum = sgd(model.parameters(), { lr: 1e-3, momentum: 0.9 });
  out.set(
    'resnet.gnft_step.sgd',
    timed(() => gradNormPenaltyStep(model, momentum, lossFn, { r: 0.05, alpha: 0.7, normalization: 'per-tensor' }), steps),
  );
  model.eval();
  out.set(
    'resnet.eval_forward',
    timed(() => noGrad(() => tidy(() => void model.forward(x))), steps),
  );
  optimizer.dispose();
  momentum.dispose();
  model.dispose();
  x.dispose();
  y.dispose();
  return out;
}

function emit(row: Record<string, unknown>): void {
  console.log(JSON.stringify(row));
}

setNumThreads(threads);
const reference = values['no-torch'] ? { skipped: '--no-torch' } : runTorchReference(repoRoot, { threads, steps, batch });
if ('skipped' in reference) console.error(`PyTorch reference skipped: ${reference.skipped}`);
else console.error(`PyTorch reference: ${reference.python}`);

const layouts: Layout[] = values.layout === 'both' ? ['contiguous', 'channelsLast'] : [values.layout as Layout];
const ours = new Map<Layout, Map<string, number>>();
for (const layout of layouts) ours.set(layout, measureResNet(layout));

for (const [layout, cases] of ours) {
  for (const [name, ms] of cases) {
    const torchMs = 'cases' in reference ? reference.cases.get(name) : undefined;
    emit({
      case: layout === 'contiguous' ? name : `${name}.channels_last`,
      batch,
      threads,
      ms_per_step: Math.round(ms * 100) / 100,
      torch_ms_per_step: torchMs ?? null,
      ratio: torchMs ? Math.round((ms / torchMs) * 1000) / 1000 : null,
    });
  }
  const train = cases.get('resnet.train_step.adam') as number;
  const gnft = cases.get('resnet.gnft_step.sgd') as number;
  emit({ case: `resnet.gnft_over_train${layout === 'contiguous' ? '' : '.channels_last'}`, ratio: Math.round((gnft / train) * 1000) / 1000 });
}
console.error(`live tensors at exit: ${memory().liveTensors}`);
