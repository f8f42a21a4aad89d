// npx tsx bench/models.ts [-- --steps N --batch N --threads N --models a,b]
// For every registered model: one AdamW training step and one eval forward on a random batch of the
// model's input shape (2 warm-up runs, then the mean of N). One JSON line per case:
// {"case":"<model>.train_step"|"<model>.eval_forward","batch","threads","ms_per_step","samples_per_s"}.
import { parseArgs } from 'node:util';
import { buildModel, getModelSpec, modelNames } from '../src/models/index.ts';
import { adamW } from '../src/nn/index.ts';
import { trainStep } from '../src/nn/train-step.ts';
import { crossEntropy, keep, manualSeed, memory, noGrad, randint, randn, setNumThreads, tidy } from '../src/torch/index.ts';
import { timed } from './timing.ts';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '3' },
    batch: { type: 'string', default: '128' },
    threads: { type: 'string', default: '2' },
    models: { type: 'string' },
  },
});
const steps = Number(values.steps);
const batch = Number(values.batch);
const threads = Number(values.threads);
const classes = 10;

function emit(name: string, ms: number): void {
  const row = { case: name, batch, threads, ms_per_step: Math.round(ms * 100) / 100, samples_per_s: Math.round((batch / ms) * 1000 * 10) / 10 };
  console.log(JSON.stringify(row));
}

setNumThreads(threads);
const names = values.models ? values.models.split(',') : modelNames();
for (const name of names) {
  manualSeed(0);
  const model = buildModel(name, { classes }).train();
  const x = keep(randn([batch, ...getModelSpec(name).inputShape]));
  const y = keep(randint(0, classes, [batch]));
  // The `fast` recipe's optimiser (specs/models.md "Training").
  const optimizer = adamW(model.parameters(), { lr: 1e-3, weightDecay: 1e-4 });
  emit(
    `${name}.train_step`,
    timed(() => trainStep(optimizer, () => crossEntropy(model.forward(x), y)), steps),
  );
  model.eval();
  emit(
    `${name}.eval_forward`,
    timed(() => noGrad(() => tidy(() => void model.forward(x))), steps),
  );
  optimizer.dispose();
  model.dispose();
  x.dispose();
  y.dispose();
}
console.error(`live tensors at exit: ${memory().liveTensors}`);
