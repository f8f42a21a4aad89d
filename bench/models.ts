// npx tsx bench/models.ts [-- --steps N --batch N --threads N --models a,b --layout channelsLast|contiguous --no-torch]
// For every registered model: one AdamW training step and one eval forward on a random batch of the
// model's input shape (2 warm-up runs, then the mean of N), beside the same work on the model's PyTorch
// twin (bench/torch_models.py). One JSON line per case:
// {"case":"<model>.train_step"|"<model>.eval_forward","batch","threads","ms_per_step","samples_per_s","torch_ms_per_step","ratio"}
// (ratio = ours / PyTorch; < 1 is faster; both null without PyTorch), then a table of them on stderr.
import { parseArgs } from 'node:util';
import { buildModel, getModelSpec, type MemoryLayout, modelNames } from '../src/models/index.ts';
import { adamW } from '../src/nn/index.ts';
import { trainStep } from '../src/nn/train-step.ts';
import { crossEntropy, keep, manualSeed, memory, noGrad, randint, randn, setNumThreads, tidy } from '../src/torch/index.ts';
import { timed } from './timing.ts';
import { findTorchPython, noTorchPython, runTorchScript, type TorchRun, torchModelsScript } from './torch-reference.ts';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '3' },
    batch: { type: 'string', default: '128' },
    threads: { type: 'string', default: '2' },
    models: { type: 'string' },
    layout: { type: 'string', default: 'channelsLast' },
    'no-torch': { type: 'boolean', default: false },
  },
});
const steps = Number(values.steps);
const batch = Number(values.batch);
const threads = Number(values.threads);
const classes = 10;
const layout = values.layout as MemoryLayout;
if (layout !== 'channelsLast' && layout !== 'contiguous') throw new Error(`--layout must be channelsLast or contiguous, got '${values.layout}'`);

const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;
const samplesPerS = (ms: number) => round((batch / ms) * 1000, 1);

interface Row {
  model: string;
  kind: 'train_step' | 'eval_forward';
  ms: number;
  torchMs: number | null;
}

function emit(row: Row): void {
  const ratio = row.torchMs ? round(row.ms / row.torchMs, 3) : null;
  const line = {
    case: `${row.model}.${row.kind}`,
    batch,
    threads,
    ms_per_step: round(row.ms, 2),
    samples_per_s: samplesPerS(row.ms),
    torch_ms_per_step: row.torchMs,
    ratio,
  };
  console.log(JSON.stringify(line));
}

function measure(name: string): Map<Row['kind'], number> {
  manualSeed(0);
  const model = buildModel(name, { classes }, layout).train();
  const x = keep(randn([batch, ...getModelSpec(name).inputShape]));
  const y = keep(randint(0, classes, [batch]));
  // The `fast` recipe's optimiser (specs/models.md "Training").
  const optimizer = adamW(model.parameters(), { lr: 1e-3, weightDecay: 1e-4 });
  const out = new Map<Row['kind'], number>();
  out.set(
    'train_step',
    timed(() => trainStep(optimizer, () => crossEntropy(model.forward(x), y)), steps),
  );
  model.eval();
  out.set(
    'eval_forward',
    timed(() => noGrad(() => tidy(() => void model.forward(x))), steps),
  );
  optimizer.dispose();
  model.dispose();
  x.dispose();
  y.dispose();
  return out;
}

/** Columns padded to their widest cell; numbers right-aligned. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const numeric = header.map((_, i) => rows.every((r) => /^[\d.]+$|^-$/.test(r[i])));
  const line = (cells: string[]) => cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

setNumThreads(threads);
const python = values['no-torch'] ? null : findTorchPython();
if (values['no-torch']) console.error('PyTorch comparison off (--no-torch): ours only');
else if (!python) console.error(`PyTorch comparison skipped: ${noTorchPython}; ours only`);
else console.error(`PyTorch: ${python} ${torchModelsScript}`);

const torchLayout = layout === 'channelsLast' ? 'channels_last' : 'contiguous';
const torchArgs = ['--batch', String(batch), '--steps', String(steps), '--threads', String(threads), '--layout', torchLayout];
const names = values.models ? values.models.split(',') : modelNames();
const rows: Row[] = [];
for (const name of names) {
  // One PyTorch run per model, right before ours, so that each pair is timed under the same machine load.
  const reference: TorchRun | null = python ? runTorchScript(torchModelsScript, ['--models', name, ...torchArgs], python) : null;
  if (reference && 'skipped' in reference) console.error(`PyTorch ${name}: ${reference.skipped}`);
  for (const [kind, ms] of measure(name)) {
    const torchMs = reference && 'cases' in reference ? (reference.cases.get(`${name}.${kind}`) ?? null) : null;
    const row = { model: name, kind, ms, torchMs };
    emit(row);
    rows.push(row);
  }
}

const fmt = (v: number | null, digits: number) => (v === null ? '-' : v.toFixed(digits));
const cells = rows.map(({ model, kind, ms, torchMs }) => [
  model,
  kind,
  fmt(ms, 2),
  fmt(torchMs, 2),
  fmt(torchMs ? ms / torchMs : null, 2),
  fmt(samplesPerS(ms), 1),
  fmt(torchMs ? samplesPerS(torchMs) : null, 1),
]);
console.error(`\nbatch ${batch}, ${threads} threads, layout ${layout}, mean of ${steps} after 2 warm-ups; ratio = ours / PyTorch (< 1: ours faster)`);
console.error(table(['model', 'case', 'ours ms', 'PyTorch ms', 'ratio', 'ours samples/s', 'PyTorch samples/s'], cells));
console.error(`live tensors at exit: ${memory().liveTensors}`);
