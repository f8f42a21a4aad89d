// Running a model over a feature set in eval mode: the predicted class of every clip and the mean loss.
import { batchIndices, type FeatureSet, gatherBatch } from '../data/feature-set.ts';
import { argmax, crossEntropy, noGrad, tidy } from '../torch/index.ts';
import type { KwsModel } from './registry.ts';

/** Predicted class per clip, in eval mode (the model's mode is restored afterwards). */
export function predict(model: KwsModel, set: FeatureSet, batchSize = 256): { predictions: number[]; loss: number } {
  const wasTraining = model.training;
  model.eval();
  const predictions: number[] = [];
  let lossSum = 0;
  try {
    noGrad(() => {
      for (const indices of batchIndices(set.size, batchSize)) {
        tidy(() => {
          const { x, y } = gatherBatch(set, indices);
          const logits = model.forward(x);
          lossSum += crossEntropy(logits, y, { reduction: 'sum' }).item();
          predictions.push(...argmax(logits, 1).toArray());
        });
      }
    });
  } finally {
    model.train(wasTraining);
  }
  return { predictions, loss: set.size ? lossSum / set.size : Number.NaN };
}

/** Share of clips predicted right, and the mean loss (a hold-out check). */
export function accuracyAndLoss(model: KwsModel, set: FeatureSet, batchSize = 256): { accuracy: number; loss: number } {
  const { predictions, loss } = predict(model, set, batchSize);
  let right = 0;
  predictions.forEach((p, i) => {
    if (p === set.labelList[i]) right++;
  });
  return { accuracy: set.size ? right / set.size : Number.NaN, loss };
}
