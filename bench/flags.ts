// The flags of the benches that time the engine against PyTorch (run.ts, models.ts): how big and how often,
// the memory layout, and which PyTorch configurations run. Each bench keeps its own size defaults.
import type { MemoryLayout } from '../src/models/index.ts';

export function versusTorchFlags(defaults: { steps: string; batch: string; rounds: string }) {
  return {
    steps: { type: 'string', default: defaults.steps },
    batch: { type: 'string', default: defaults.batch },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: defaults.rounds },
    layout: { type: 'string', default: 'channelsLast' },
    'no-torch': { type: 'boolean', default: false },
    'no-default': { type: 'boolean', default: false },
    'torch-allocators': { type: 'string', default: 'glibc-keep' },
  } as const;
}

/** The sizes as positive integers and the layout, checked; an error names the first bad flag. */
export function versusTorchSettings(values: { steps: string; batch: string; threads: string; rounds: string; layout: string }) {
  const sizes = { steps: Number(values.steps), batch: Number(values.batch), threads: Number(values.threads), rounds: Number(values.rounds) };
  for (const [name, v] of Object.entries(sizes)) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer, got '${values[name as keyof typeof sizes]}'`);
  }
  const layout = values.layout as MemoryLayout;
  if (layout !== 'channelsLast' && layout !== 'contiguous') throw new Error(`--layout must be channelsLast or contiguous, got '${values.layout}'`);
  return { ...sizes, layout };
}
