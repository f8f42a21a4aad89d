// Detection quality from scores: the area under the ROC curve as the Mann-Whitney statistic (the chance
// that a random positive scores above a random negative, ties counting half), and the rates at a threshold.

/** AUROC of `positives` against `negatives` (higher score = more positive); NaN when either is empty. */
export function auroc(positives: readonly number[], negatives: readonly number[]): number {
  if (positives.length === 0 || negatives.length === 0) return Number.NaN;
  // Rank all scores once (average ranks for ties): U = sum of positive ranks - n+(n+ + 1)/2.
  const all = [...positives.map((s) => ({ s, pos: true })), ...negatives.map((s) => ({ s, pos: false }))].sort((a, b) => a.s - b.s);
  let rankSum = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j + 1 < all.length && all[j + 1].s === all[i].s) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (all[k].pos) rankSum += rank;
    i = j + 1;
  }
  const n1 = positives.length;
  return (rankSum - (n1 * (n1 + 1)) / 2) / (n1 * negatives.length);
}

/** Share of positives flagged (score > threshold) and of negatives flagged, and the accuracy. */
export function ratesAt(positives: readonly number[], negatives: readonly number[], threshold: number): { tpr: number; fpr: number; accuracy: number } {
  const tp = positives.filter((s) => s > threshold).length;
  const fp = negatives.filter((s) => s > threshold).length;
  const total = positives.length + negatives.length;
  return {
    tpr: positives.length ? tp / positives.length : Number.NaN,
    fpr: negatives.length ? fp / negatives.length : Number.NaN,
    accuracy: total ? (tp + negatives.length - fp) / total : Number.NaN,
  };
}
