// npx tsx bench/models.ts [-- --steps N --warmups N --batch N --threads N --rounds N --models a,b --layout channelsLast|contiguous
//                           --no-torch --no-default --torch-allocators glibc-keep,jemalloc]
// For every registered model: one AdamW training step and one eval forward on a random batch of the
// model's input shape (--warmups untimed runs, 2 by default, then the mean of N), beside the same work on the model's PyTorch
// twin (bench/torch_models.py). PyTorch runs at its best (same layout as ours, an allocator that keeps freed
// memory: glibc told so, or also jemalloc with --torch-allocators, the faster per case; see torch-reference.ts) and once as installed
// (glibc defaults, NCHW). Rounds alternate PyTorch and ours, model by model; medians are compared.
// One JSON line per case:
// {"case":"<model>.train_step"|"<model>.eval_forward","batch","threads","ms_per_step","samples_per_s",
//  "torch_best_ms","torch_best_config","ratio","torch_default_ms","ratio_default"}
// (ratio = ours / PyTorch at its best; < 1 is faster; null without PyTorch), then a table on stderr.
import { parseArgs } from 'node:util';
import { buildModel, getModelSpec, modelNames } from '../src/models/index.ts';
import { adamW } from '../src/nn/index.ts';
import { trainStep } from '../src/nn/train-step.ts';
import { crossEntropy, emptyCache, keep, manualSeed, memory, noGrad, randint, randn, setNumThreads, tidy } from '../src/torch/index.ts';
import { versusTorchFlags, versusTorchSettings } from './flags.ts';
import { timed } from './timing.ts';
import {
  findTorchPython,
  noTorchPython,
  RoundTimes,
  runTorchScript,
  type TorchConfig,
  torchDefault,
  torchModelsScript,
  tunedTorchConfigs,
} from './torch-reference.ts';

const { values } = parseArgs({
  options: {
    ...versusTorchFlags({ steps: '3', batch: '128', rounds: '1' }),
    models: { type: 'string' },
    warmups: { type: 'string', default: '2' },
  },
});
const warmups = Number(values.warmups);
if (!Number.isInteger(warmups) || warmups < 0) throw new Error(`--warmups must be a non-negative integer, got '${values.warmups}'`);
const { steps, batch, threads, rounds, layout } = versusTorchSettings(values);
const classes = 10;

const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;
const samplesPerS = (ms: number) => round((batch / ms) * 1000, 1);

interface Row {
  model: string;
  kind: 'train_step' | 'eval_forward';
  ms: number;
  best: { ms: number; config: string } | null;
  defaultMs: number | null;
}

const ratioOf = (ms: number, torchMs: number | null | undefined) => (torchMs ? round(ms / torchMs, 3) : null);

function emit(row: Row): void {
  const line = {
    case: `${row.model}.${row.kind}`,
    batch,
    threads,
    rounds,
    ms_per_step: round(row.ms, 2),
    samples_per_s: samplesPerS(row.ms),
    torch_best_ms: row.best ? round(row.best.ms, 2) : null,
    torch_best_config: row.best ? `${row.best.config}, ${torchLayout}` : null,
    ratio: ratioOf(row.ms, row.best?.ms),
    torch_default_ms: row.defaultMs === null ? null : round(row.defaultMs, 2),
    ratio_default: ratioOf(row.ms, row.defaultMs),
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
    timed(() => trainStep(optimizer, () => crossEntropy(model.forward(x), y)), steps, warmups),
  );
  model.eval();
  out.set(
    'eval_forward',
    timed(() => noGrad(() => tidy(() => void model.forward(x))), steps, warmups),
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
const torchArgs = ['--batch', String(batch), '--steps', String(steps), '--threads', String(threads), '--warmups', String(warmups)];
const tuned = python ? tunedTorchConfigs(torchLayout, values['torch-allocators'].split(',')) : [];
const names = values.models ? values.models.split(',') : modelNames();
const kinds: Row['kind'][] = ['train_step', 'eval_forward'];
const rows: Row[] = [];
for (const name of names) {
  getModelSpec(name); // an unknown name fails here, before any timing
  const times = new RoundTimes();
  const runReference = (config: TorchConfig) => {
    // Our caching allocator keeps what the last measurement freed (it grows to fit a large model's step, while
    // the machine has memory available); the PyTorch child needs that memory: with eat-m both sides at once were OOM-killed
    // (2026-12-03). Our next measurement warms up again, so emptying the cache here costs it nothing timed.
    emptyCache();
    const run = runTorchScript(torchModelsScript, ['--models', name, ...torchArgs, '--layout', config.layout], python, config);
    if ('skipped' in run) console.error(`PyTorch ${name} (${config.name}): ${run.skipped}`);
    else times.add(config.name, run.cases);
  };
  if (python && !values['no-default']) runReference(torchDefault);
  // Each round: PyTorch's tuned configurations, then ours, so that each pair is timed under the same load.
  for (let r = 0; r < rounds; r++) {
    for (const config of tuned) runReference(config);
    times.add('ours', new Map([...measure(name)].map(([kind, ms]) => [`${name}.${kind}`, ms])));
  }
  for (const kind of kinds) {
    const key = `${name}.${kind}`;
    const row: Row = {
      model: name,
      kind,
      ms: times.median('ours', key) as number,
      best: times.best(
        tuned.map((c) => c.name),
        key,
      ),
      defaultMs: times.median(torchDefault.name, key),
    };
    emit(row);
    rows.push(row);
  }
}

const fmt = (v: number | null | undefined, digits: number) => (v === null || v === undefined ? '-' : v.toFixed(digits));
const cells = rows.map(({ model, kind, ms, best, defaultMs }) => [
  model,
  kind,
  fmt(ms, 0),
  fmt(best?.ms, 0),
  best?.config ?? '-',
  fmt(ratioOf(ms, best?.ms), 2),
  fmt(defaultMs, 0),
  fmt(ratioOf(ms, defaultMs), 2),
  fmt(samplesPerS(ms), 1),
  fmt(best ? samplesPerS(best.ms) : null, 1),
]);
console.error(
  `\nbatch ${batch}, ${threads} threads, layout ${layout}, median of ${rounds} round(s) of ${steps} steps after ${warmups} warm-ups; ratio = ours / PyTorch (< 1: ours faster)`,
);
console.error(
  table(
    ['model', 'case', 'ours ms', 'PyTorch best ms', 'best config', 'ratio', 'PyTorch default ms', 'ratio', 'ours samples/s', 'PyTorch best samples/s'],
    cells,
  ),
);
console.error(`live tensors at exit: ${memory().liveTensors}`);
