// npx tsx bench/epoch.ts -- --data DIR [--epochs N --threads N --no-torch --node-flags=--single-threaded-gc]
// The wall clock a user sees: `kwshield train --model resnet` on a Speech Commands folder (the small synthetic
// SCD-10: `kwshield data synth --preset small`), seconds per epoch, beside the same epochs done by PyTorch at
// its best (bench/torch_epoch.py on the very features kwshield trained on, the same recipe, the same
// network, channels_last, an allocator that keeps freed memory). Epoch 1 of each side is a warm-up; the
// median of the later epochs is compared. One JSON line: {"case":"resnet.train_epoch", "seconds", ...}.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { getFrontEnd } from '../src/audio/frontends.ts';
import { timeAxisOf } from '../src/data/augment.ts';
import { disposeSplits, loadSplits } from '../src/experiments/data-splits.ts';
import { saveSafetensors } from '../src/torch/index.ts';
import { childEnv, findTorchPython, median, noTorchPython, tunedTorchConfigs } from './torch-reference.ts';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    epochs: { type: 'string', default: '3' },
    threads: { type: 'string', default: '2' },
    'no-torch': { type: 'boolean', default: false },
    'torch-allocators': { type: 'string', default: 'glibc-keep' },
    /** flags for the node that runs `kwshield train`, e.g. --node-flags=--single-threaded-gc (the = form: a value starting with -- is read as an option otherwise) */
    'node-flags': { type: 'string', default: '' },
  },
});
if (!values.data) throw new Error('--data DIR is required: a Speech Commands folder, e.g. one made by `kwshield data synth --preset small --out DIR`');
const epochs = Number(values.epochs);
const threads = Number(values.threads);
if (!Number.isInteger(epochs) || epochs < 2) throw new Error(`--epochs must be an integer >= 2 (the first is a warm-up), got '${values.epochs}'`);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(path.join(tmpdir(), 'kwshield-epoch-'));
const frontEnd = 'mfcc-16k';

interface EpochLine {
  epoch: number;
  seconds: number;
}

try {
  console.error(`ours: kwshield train --model resnet --epochs ${epochs} (KWSHIELD_THREADS=${threads}) ...`);
  const out = path.join(work, 'run');
  const nodeFlags = values['node-flags'].split(' ').filter(Boolean);
  const train = spawnSync(
    process.execPath,
    [
      ...nodeFlags,
      path.join(repoRoot, 'bin', 'kwshield'),
      'train',
      '--data',
      values.data,
      '--model',
      'resnet',
      '--epochs',
      String(epochs),
      '--out',
      out,
      '--json',
    ],
    {
      encoding: 'utf8',
      env: { ...process.env, KWSHIELD_THREADS: String(threads) },
    },
  );
  if (train.status !== 0) throw new Error(`kwshield train failed: ${train.stderr.trim().split('\n').slice(-3).join(' ')}`);
  const ours = readFileSync(path.join(out, 'log.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('"event":"epoch"'))
    .map((l) => JSON.parse(l) as EpochLine);
  const recipe = JSON.parse(readFileSync(path.join(out, 'model.json'), 'utf8')).provenance.recipeSettings as {
    batchSize: number;
    lr: number;
    weightDecay: number;
    optimizer: string;
    clipNorm: number;
    augment: { timeShiftSeconds: number; featureNoise: number } | null;
  };
  if (recipe.optimizer !== 'adamw' || recipe.clipNorm > 0)
    throw new Error(`bench/torch_epoch.py mirrors the fast recipe (AdamW, no clipping); this run used ${recipe.optimizer}, clip ${recipe.clipNorm}`);

  // The features kwshield trained on (from its feature cache), for PyTorch to train on.
  const dataFile = path.join(work, 'features.safetensors');
  const splits = await loadSplits(values.data, { frontEnd });
  saveSafetensors(
    dataFile,
    new Map([
      ['train_features', splits.train.features],
      ['train_labels', splits.train.labels],
      ['val_features', splits.validation.features],
      ['val_labels', splits.validation.labels],
    ]),
  );
  const clips = splits.train.size;
  disposeSplits(splits);
  const shiftMax = recipe.augment ? Math.round(recipe.augment.timeShiftSeconds * timeAxisOf(getFrontEnd(frontEnd)).stepsPerSecond) : 0;
  const torchArgs = ['--data', dataFile, '--epochs', String(epochs), '--batch', String(recipe.batchSize), '--lr', String(recipe.lr)];
  torchArgs.push(
    '--weight-decay',
    String(recipe.weightDecay),
    '--shift-max',
    String(shiftMax),
    '--noise',
    String(recipe.augment?.featureNoise ?? 0),
    '--threads',
    String(threads),
  );

  const python = values['no-torch'] ? null : findTorchPython();
  if (!python && !values['no-torch']) console.error(`PyTorch skipped: ${noTorchPython}`);
  const torchEpochs = new Map<string, number[]>();
  for (const config of python ? tunedTorchConfigs('channels_last', values['torch-allocators'].split(',')) : []) {
    console.error(`PyTorch (${config.name}, channels_last): the same ${epochs} epochs ...`);
    const run = spawnSync(python as string, [path.join(repoRoot, 'bench', 'torch_epoch.py'), ...torchArgs], {
      encoding: 'utf8',
      env: childEnv(config),
    });
    if (run.status !== 0) {
      console.error(`PyTorch ${config.name} failed: ${run.stderr.trim().split('\n').pop()}`);
      continue;
    }
    torchEpochs.set(
      config.name,
      run.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => (JSON.parse(l) as EpochLine).seconds),
    );
  }
  const steady = (seconds: number[]) => median(seconds.slice(1));
  const oursSeconds = steady(ours.map((e) => e.seconds));
  let best: { config: string; seconds: number } | null = null;
  for (const [config, seconds] of torchEpochs) if (!best || steady(seconds) < best.seconds) best = { config, seconds: steady(seconds) };
  const round = (v: number) => Math.round(v * 100) / 100;
  console.log(
    JSON.stringify({
      case: 'resnet.train_epoch',
      ...(nodeFlags.length ? { node_flags: nodeFlags.join(' ') } : {}),
      clips,
      batch: recipe.batchSize,
      threads,
      epochs,
      seconds: round(oursSeconds),
      per_epoch: ours.map((e) => e.seconds),
      torch_best_seconds: best ? round(best.seconds) : null,
      torch_best_config: best ? `${best.config}, channels_last` : null,
      torch_per_epoch: Object.fromEntries(torchEpochs),
      ratio: best ? Math.round((oursSeconds / best.seconds) * 1000) / 1000 : null,
    }),
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
