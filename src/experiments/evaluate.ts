// Running a model over a feature set: predictions, clean accuracy, loss and the confusion matrix.
import { accuracy, confusionMatrix, perClassAccuracy } from '../analysis/metrics.ts';
import { batchIndices, type FeatureSet, gatherBatch } from '../data/feature-set.ts';
import type { KwsModel } from '../models/registry.ts';
import { argmax, crossEntropy, noGrad, tidy } from '../torch/index.ts';

export interface Evaluation {
  accuracy: number;
  loss: number;
  perClassAccuracy: number[];
  confusion: number[][];
  predictions: number[];
}

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

export function evaluate(model: KwsModel, set: FeatureSet, batchSize = 256): Evaluation {
  const { predictions, loss } = predict(model, set, batchSize);
  const confusion = confusionMatrix(predictions, set.labelList, set.classes.length);
  return { accuracy: accuracy(predictions, set.labelList), loss, perClassAccuracy: perClassAccuracy(confusion), confusion, predictions };
}
