// The per-batch bar and per-epoch line that `train` and `demo` show while a model trains.
import type { TrainRunOptions } from '../experiments/train-run.ts';
import { percent } from './output.ts';
import { createProgress, type Progress, trainingEta } from './progress.ts';

/** Callbacks for trainRun: a bar per epoch (loss so far, ETA of the epoch), then a summary with the ETA of the run. */
export function trainingProgress(epochs: number): Pick<TrainRunOptions, 'onBatch' | 'onEpoch'> {
  let bar: Progress | undefined;
  const epochSeconds: number[] = [];
  return {
    onBatch: (b, batches, epoch, loss) => {
      if (b === 1) bar = createProgress(`epoch ${epoch + 1}/${epochs}`, batches);
      bar?.update(b, `loss ${loss.toFixed(3)}`);
    },
    onEpoch: (row) => {
      epochSeconds.push(row.seconds);
      bar?.finish(
        `loss ${row.trainLoss.toFixed(3)} acc ${percent(row.trainAccuracy)} val ${percent(row.valAccuracy)}, ` +
          `${row.samplesPerSecond.toFixed(0)} samples/s, run eta ${trainingEta(epochSeconds, epochs - row.epoch - 1)}`,
      );
    },
  };
}
