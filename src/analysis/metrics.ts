// Backdoor evaluation metrics as BackdoorBench defines them (specs/defenses.md section 0).

/** Share of predictions equal to their labels (clean accuracy, CA, on the clean test set). */
export function accuracy(predictions: ArrayLike<number>, labels: ArrayLike<number>): number {
  checkLengths(predictions, labels);
  if (predictions.length === 0) return Number.NaN;
  let right = 0;
  for (let i = 0; i < predictions.length; i++) if (predictions[i] === labels[i]) right++;
  return right / predictions.length;
}

/** confusion[true][predicted] counts. */
export function confusionMatrix(predictions: ArrayLike<number>, labels: ArrayLike<number>, classes: number): number[][] {
  checkLengths(predictions, labels);
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < predictions.length; i++) m[labels[i]][predictions[i]]++;
  return m;
}

/** Recall of each class (NaN for a class with no clips). */
export function perClassAccuracy(confusion: number[][]): number[] {
  return confusion.map((row, c) => {
    const total = row.reduce((a, b) => a + b, 0);
    return total === 0 ? Number.NaN : row[c] / total;
  });
}

/**
 * Attack success rate: share of triggered clips (whose true label is not the target) predicted as
 * the target.
 */
export function attackSuccessRate(predictions: ArrayLike<number>, originalLabels: ArrayLike<number>, target: number): number {
  checkLengths(predictions, originalLabels);
  let n = 0;
  let hit = 0;
  for (let i = 0; i < predictions.length; i++) {
    if (originalLabels[i] === target) continue;
    n++;
    if (predictions[i] === target) hit++;
  }
  return n === 0 ? Number.NaN : hit / n;
}

/** Robust accuracy: share of triggered non-target clips still predicted as their true label. */
export function robustAccuracy(predictions: ArrayLike<number>, originalLabels: ArrayLike<number>, target: number): number {
  checkLengths(predictions, originalLabels);
  let n = 0;
  let right = 0;
  for (let i = 0; i < predictions.length; i++) {
    if (originalLabels[i] === target) continue;
    n++;
    if (predictions[i] === originalLabels[i]) right++;
  }
  return n === 0 ? Number.NaN : right / n;
}

export interface BackdoorMetrics {
  /** clean accuracy */
  ca: number;
  /** attack success rate */
  asr: number;
  /** robust accuracy */
  ra: number;
}

/** Defense effectiveness rate: [max(0, ASR_bd - ASR_def) - max(0, CA_bd - CA_def) + 1] / 2; 0.5 = no change. */
export function defenseEffectivenessRate(backdoored: BackdoorMetrics, defended: BackdoorMetrics): number {
  return (Math.max(0, backdoored.asr - defended.asr) - Math.max(0, backdoored.ca - defended.ca) + 1) / 2;
}

/** Robust improvement rate: [max(0, RA_def - RA_bd) - max(0, CA_bd - CA_def) + 1] / 2. */
export function robustImprovementRate(backdoored: BackdoorMetrics, defended: BackdoorMetrics): number {
  return (Math.max(0, defended.ra - backdoored.ra) - Math.max(0, backdoored.ca - defended.ca) + 1) / 2;
}

function checkLengths(a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) throw new Error(`metrics: ${a.length} predictions but ${b.length} labels`);
}
