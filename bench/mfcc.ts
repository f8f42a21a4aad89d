// node --import tsx bench/mfcc.ts [--clips 10000] [--batch 256] [--threads 2] [--case mfcc-16k,...] [--grad]
// Front-end throughput on one-second clips, batched and scoped as dataset caching does
// (applyInBatches under noGrad). One JSON line per case: {"case","clips_per_s","seconds","clips","batch","threads"}.
// --grad adds "<name>.backward": forward + backward to the waveform (FlowMur-style trigger optimisation).
import { parseArgs } from 'node:util';
import { applyInBatches, type FrontEndName, frontEndNames, getFrontEnd } from '../src/audio/frontends.ts';
import { backward, keep, manualSeed, noGrad, randn, setNumThreads, tidy } from '../src/torch/index.ts';

const { values } = parseArgs({
  options: {
    clips: { type: 'string', default: '10000' },
    batch: { type: 'string', default: '256' },
    threads: { type: 'string', default: '2' },
    case: { type: 'string', default: frontEndNames.join(',') },
    grad: { type: 'boolean', default: false },
  },
});
const clips = Number(values.clips);
const batch = Number(values.batch);
const threads = Number(values.threads);
setNumThreads(threads);
manualSeed(0);

for (const name of values.case.split(',') as FrontEndName[]) {
  const fe = getFrontEnd(name);
  // One pool of distinct clips, cycled: 10,000 one-second clips at 44.1 kHz would take 1.7 GB.
  const poolSize = Math.min(clips, 4 * batch);
  const pool = keep(randn([poolSize, fe.inputSamples]).mul(0.1));
  const run = (n: number) => {
    for (let done = 0; done < n; done += poolSize) {
      const waves = pool.narrow(0, 0, Math.min(poolSize, n - done));
      noGrad(() => tidy(() => void applyInBatches(fe, waves, { batchSize: batch })));
    }
  };
  run(batch); // warm-up: builds the filterbank/DCT constants
  let start = performance.now();
  run(clips);
  let seconds = (performance.now() - start) / 1000;
  console.log(JSON.stringify({ case: name, clips_per_s: Math.round(clips / seconds), seconds: Number(seconds.toFixed(2)), clips, batch, threads }));
  if (values.grad) {
    const steps = Math.max(1, Math.round(Math.min(clips, 2048) / batch));
    const waves = pool.narrow(0, 0, Math.min(batch, poolSize));
    const step = () =>
      tidy(() => {
        const x = waves.detach();
        x.requiresGrad = true;
        backward(fe.apply(x).sum());
      });
    step();
    start = performance.now();
    for (let i = 0; i < steps; i++) step();
    seconds = (performance.now() - start) / 1000;
    const n = steps * waves.size(0);
    console.log(
      JSON.stringify({ case: `${name}.backward`, clips_per_s: Math.round(n / seconds), seconds: Number(seconds.toFixed(2)), clips: n, batch, threads }),
    );
  }
  pool.dispose();
}
