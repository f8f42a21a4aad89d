// Running a model over a feature set: predictions, clean accuracy, loss and the confusion matrix.
import {
  accuracy,
  attackSuccessRate,
  type BackdoorMetrics,
  confusionMatrix,
  defenseEffectivenessRate,
  perClassAccuracy,
  robustAccuracy,
} from '../analysis/metrics.ts';
import type { FeatureSet } from '../data/feature-set.ts';
import { predict } from '../models/predict.ts';
import type { KwsModel } from '../models/registry.ts';

export { predict };

export interface Evaluation {
  accuracy: number;
  loss: number;
  perClassAccuracy: number[];
  confusion: number[][];
  predictions: number[];
}

export function evaluate(model: KwsModel, set: FeatureSet, batchSize = 256): Evaluation {
  const { predictions, loss } = predict(model, set, batchSize);
  const confusion = confusionMatrix(predictions, set.labelList, set.classes.length);
  return { accuracy: accuracy(predictions, set.labelList), loss, perClassAccuracy: perClassAccuracy(confusion), confusion, predictions };
}

/**
 * CA on the clean test set; ASR and RA on its triggered copy (specs/defenses.md section 0): the
 * triggered set holds the same clips in the same order, so the clean set's labels are the true ones,
 * and clips whose true label is the target are left out of ASR and RA.
 */
export function evaluateBackdoor(model: KwsModel, cleanTest: FeatureSet, triggeredTest: FeatureSet, target: number, batchSize = 256): BackdoorMetrics {
  if (cleanTest.size !== triggeredTest.size) {
    throw new Error(`the triggered test set has ${triggeredTest.size} clips but the clean one ${cleanTest.size}: they must be the same clips`);
  }
  const clean = predict(model, cleanTest, batchSize).predictions;
  const triggered = predict(model, triggeredTest, batchSize).predictions;
  return {
    ca: accuracy(clean, cleanTest.labelList),
    asr: attackSuccessRate(triggered, cleanTest.labelList, target),
    ra: robustAccuracy(triggered, cleanTest.labelList, target),
  };
}

/** DER of a defended model against the backdoored one it came from. */
export const derBetween = (backdoored: BackdoorMetrics, defended: BackdoorMetrics): number => defenseEffectivenessRate(backdoored, defended);
