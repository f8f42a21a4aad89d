// npm run bench [-- --steps N --batch N --threads N --rounds N --layout channelsLast|contiguous --no-torch --no-default
//                  --torch-allocators glibc-keep,jemalloc]
// The project's ResNet training step (Adam), GN-FT step (SGD momentum) and eval forward, beside the shared
// PyTorch reference (../shared/peers/torch_reference.py) in the same invocation. PyTorch runs at its best (the
// model in the same layout as ours, and an allocator that keeps freed memory: glibc told so, and jemalloc too
// with --torch-allocators glibc-keep,jemalloc; the faster per case) and, once, as installed (glibc defaults, NCHW). Rounds alternate PyTorch
// and ours; each side's median over rounds is compared. One JSON line per case:
// {"case","ms_per_step","torch_best_ms","torch_best_config","ratio","torch_default_ms","ratio_default"}
// (ratio = ours / PyTorch at its best; < 1 is faster), then a table on stderr.
// resnet_torchscript.gnft_step.sgd is the same GN-FT step on the reference ResNet exported by PyTorch with
// torch.jit.script (bench/export_torchscript_resnet.py) and run through the engine's TorchScript loader as a
// user's own model would be (src/models/torchscript.ts); its PyTorch column is PyTorch's eager GN-FT step.
// --no-torchscript skips it. resnet_torchscript_optimized.gnft_step.sgd (only with --only naming it) runs the
// archive on libtorch's optimised graph-executor plan, as the engine did until 2026-12-08, for a before/after
// in one run (loadScriptModule's graphOptimizer). --only CASE,CASE... times only those cases of ours (PyTorch's reference script
// still runs all of its own; the table compares what was timed), e.g.
//   npm run bench -- --only resnet.gnft_step.sgd,resnet_torchscript.gnft_step.sgd
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gradNormPenaltyStep } from '../src/defenses/gnft-step.ts';
import type { KwsModel } from '../src/models/registry.ts';
import { ResNet } from '../src/models/resnet.ts';
import { loadTorchScriptModel } from '../src/models/torchscript.ts';
import { adam, sgd } from '../src/nn/index.ts';
import { trainStep } from '../src/nn/train-step.ts';
import { crossEntropy, keep, manualSeed, memory, noGrad, randint, randn, setNumThreads, type Tensor, tidy } from '../src/torch/index.ts';
import { versusTorchFlags, versusTorchSettings } from './flags.ts';
import { timed } from './timing.ts';
import {
  findTorchPython,
  noTorchPython,
  RoundTimes,
  referenceArgs,
  referenceScript,
  runTorchScript,
  type TorchConfig,
  torchDefault,
  tunedTorchConfigs,
} from './torch-reference.ts';

const { values } = parseArgs({
  options: {
    ...versusTorchFlags({ steps: '5', batch: '256', rounds: '3' }),
    'no-torchscript': { type: 'boolean', default: false },
    only: { type: 'string' },
  },
});
const { steps, batch, threads, rounds, layout } = versusTorchSettings(values);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const caseNames = [
  'resnet.train_step.adam',
  'resnet.gnft_step.sgd',
  'resnet.eval_forward',
  'resnet_torchscript.gnft_step.sgd',
  'resnet_torchscript_optimized.gnft_step.sgd',
];
const only = values.only === undefined ? null : new Set(values.only.split(',').map((c) => c.trim()));
for (const name of only ?? []) if (!caseNames.includes(name)) throw new Error(`--only: unknown case '${name}'; the cases are ${caseNames.join(', ')}`);
const timedByDefault = (name: string) => name !== 'resnet_torchscript_optimized.gnft_step.sgd';
const wanted = (name: string) => (only ? only.has(name) : timedByDefault(name));
/** The PyTorch case a case of ours is compared with. */
const torchCaseOf = (name: string) => name.replace(/^resnet_torchscript(_optimized)?\./, 'resnet.');

/**
 * A random MFCC batch and labels for `model` (built right after manualSeed(0), so every case draws the
 * same batch), in the chosen layout, and the loss over them; the model follows the layout too.
 */
function resnetBatch(model: KwsModel): { x: Tensor; y: Tensor; lossFn: () => Tensor } {
  let x: Tensor = keep(randn([batch, 1, 101, 40]));
  if (layout === 'channelsLast') {
    model.channelsLast();
    const contiguousInput = x;
    x = keep(x.contiguous('channelsLast'));
    contiguousInput.dispose();
  }
  const y = keep(randint(0, 10, [batch]));
  return { x, y, lossFn: () => crossEntropy(model.forward(x), y) };
}

function measureResNet(): Map<string, number> {
  manualSeed(0);
  const model = new ResNet().train();
  const { x, y, lossFn } = resnetBatch(model);
  const out = new Map<string, number>();
  const optimizer = adam(model.parameters(), { lr: 1e-4 });
  if (wanted('resnet.train_step.adam'))
    out.set(
      'resnet.train_step.adam',
      timed(() => trainStep(optimizer, lossFn), steps),
    );
  const momentum = sgd(model.parameters(), { lr: 1e-3, momentum: 0.9 });
  if (wanted('resnet.gnft_step.sgd'))
    out.set(
      'resnet.gnft_step.sgd',
      timed(() => gradNormPenaltyStep(model, momentum, lossFn, { r: 0.05, alpha: 0.7, normalization: 'per-tensor' }), steps),
    );
  model.eval();
  if (wanted('resnet.eval_forward'))
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

/** The GN-FT step of measureResNet on a TorchScript archive of the reference ResNet (same batch, optimizer, options). */
function measureTorchScriptResNet(file: string, graphOptimizer = false): Map<string, number> {
  manualSeed(0);
  const model = loadTorchScriptModel(file, { graphOptimizer }).train();
  const { x, y, lossFn } = resnetBatch(model);
  const momentum = sgd(model.parameters(), { lr: 1e-3, momentum: 0.9 });
  const ms = timed(() => gradNormPenaltyStep(model, momentum, lossFn, { r: 0.05, alpha: 0.7, normalization: 'per-tensor' }), steps);
  momentum.dispose();
  model.dispose();
  x.dispose();
  y.dispose();
  return new Map([[graphOptimizer ? 'resnet_torchscript_optimized.gnft_step.sgd' : 'resnet_torchscript.gnft_step.sgd', ms]]);
}

const round2 = (v: number | null) => (v === null ? null : Math.round(v * 100) / 100);
const ratio = (a: number | null, b: number | null) => (a !== null && b ? Math.round((a / b) * 1000) / 1000 : null);

setNumThreads(threads);
const python = values['no-torch'] ? null : findTorchPython();
const script = referenceScript(repoRoot);
const torchWhy = values['no-torch']
  ? '--no-torch'
  : !python
    ? noTorchPython
    : !script
      ? 'shared/peers/torch_reference.py not found beside the repository'
      : null;
if (torchWhy) console.error(`PyTorch reference skipped: ${torchWhy}`);
else console.error(`PyTorch reference: ${python} ${script}`);

// The TorchScript archive of the reference ResNet, exported once by PyTorch into a temporary folder.
let torchScriptFile: string | null = null;
const scratch = mkdtempSync(path.join(tmpdir(), 'kwshield-bench-'));
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));
if (!values['no-torchscript'] && (wanted('resnet_torchscript.gnft_step.sgd') || wanted('resnet_torchscript_optimized.gnft_step.sgd'))) {
  const exporter = findTorchPython();
  if (!exporter || !script) console.error(`TorchScript case skipped: ${exporter ? 'shared/peers/torch_reference.py not found' : noTorchPython}`);
  else {
    const file = path.join(scratch, 'resnet-scripted.pt');
    const run = spawnSync(exporter, [path.join(repoRoot, 'bench', 'export_torchscript_resnet.py'), path.dirname(script), file], { encoding: 'utf8' });
    if (run.status === 0) torchScriptFile = file;
    else console.error(`TorchScript case skipped: the export failed: ${(run.stderr ?? '').trim().split('\n').pop()}`);
  }
}

const torchLayout = layout === 'channelsLast' ? 'channels_last' : 'contiguous';
const tuned = torchWhy ? [] : tunedTorchConfigs(torchLayout, values['torch-allocators'].split(','));
const times = new RoundTimes();
const opts = { threads, steps, batch };
function runReference(config: TorchConfig): void {
  const run = runTorchScript(script as string, referenceArgs(opts, config), python, config);
  if ('skipped' in run) console.error(`PyTorch ${config.name}: ${run.skipped}`);
  else times.add(config.name, run.cases);
}
if (!torchWhy && !values['no-default']) {
  console.error('PyTorch as installed (once; it is the slow one) ...');
  runReference(torchDefault);
}
for (let r = 1; r <= rounds; r++) {
  console.error(`round ${r}/${rounds}: PyTorch ${tuned.map((c) => c.name).join(', ') || '(skipped)'}, then ours ...`);
  for (const config of tuned) runReference(config);
  if (['resnet.train_step.adam', 'resnet.gnft_step.sgd', 'resnet.eval_forward'].some(wanted)) times.add('ours', measureResNet());
  if (torchScriptFile && wanted('resnet_torchscript.gnft_step.sgd')) times.add('ours', measureTorchScriptResNet(torchScriptFile));
  if (torchScriptFile && wanted('resnet_torchscript_optimized.gnft_step.sgd')) times.add('ours', measureTorchScriptResNet(torchScriptFile, true));
}

const tunedNames = tuned.map((c) => c.name);
const rows: string[][] = [];
for (const name of caseNames) {
  const ours = times.median('ours', name);
  if (ours === null) continue;
  const best = times.best(tunedNames, torchCaseOf(name));
  const byDefault = times.median(torchDefault.name, torchCaseOf(name));
  console.log(
    JSON.stringify({
      case: layout === 'contiguous' ? `${name}.contiguous` : name,
      batch,
      threads,
      rounds,
      ms_per_step: round2(ours),
      torch_best_ms: round2(best?.ms ?? null),
      torch_best_config: best ? `${best.config}, ${torchLayout}` : null,
      ratio: ratio(ours, best?.ms ?? null),
      torch_default_ms: round2(byDefault),
      ratio_default: ratio(ours, byDefault),
    }),
  );
  const cell = (v: number | null, digits = 0) => (v === null ? '-' : v.toFixed(digits));
  rows.push([
    name,
    cell(ours),
    cell(best?.ms ?? null),
    best?.config ?? '-',
    cell(ratio(ours, best?.ms ?? null), 2),
    cell(byDefault),
    cell(ratio(ours, byDefault), 2),
  ]);
}
const gnftOverTrain = ratio(times.median('ours', 'resnet.gnft_step.sgd'), times.median('ours', 'resnet.train_step.adam'));
console.log(JSON.stringify({ case: 'resnet.gnft_over_train', ratio: gnftOverTrain }));
const scriptOverBuiltIn = ratio(times.median('ours', 'resnet_torchscript.gnft_step.sgd'), times.median('ours', 'resnet.gnft_step.sgd'));
if (scriptOverBuiltIn !== null) console.log(JSON.stringify({ case: 'resnet_torchscript.gnft_over_builtin', ratio: scriptOverBuiltIn }));
const optimizedOverEager = ratio(times.median('ours', 'resnet_torchscript_optimized.gnft_step.sgd'), times.median('ours', 'resnet_torchscript.gnft_step.sgd'));
if (optimizedOverEager !== null) console.log(JSON.stringify({ case: 'resnet_torchscript.optimized_over_eager', ratio: optimizedOverEager }));

const header = ['case', 'ours ms', 'PyTorch best ms', 'best config', 'ratio', 'PyTorch default ms', 'ratio'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells: string[]) => cells.map((c, i) => (i === 0 || i === 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
console.error(
  `\nbatch ${batch}, ${threads} threads, ours in ${layout}, median of ${rounds} rounds of ${steps} steps after 2 warm-ups; ratio = ours / PyTorch (< 1: ours faster)`,
);
console.error([line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n'));
console.error(
  `GN-FT step / our train step: ${gnftOverTrain}; TorchScript GN-FT step / built-in: ${scriptOverBuiltIn ?? '-'}; live tensors at exit: ${memory().liveTensors}`,
);
