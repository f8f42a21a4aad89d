// Research (did not ship; measured in the README's scan section): is this model backdoored? Compared with clean reference models of its own configuration (the same family,
// front-end and classes, trained by the defender on clean data): a backdoored model puts more probability on
// its target class, on clean clips of every class, than clean models of that configuration do. Dirty-label
// poisoning teaches each word a little of the target, and that shift survives on clean inputs.
//
// Why references: every clean model of one configuration already has classes it leans towards (on our
// synthetic SCD-10 'right' draws the runner-ups of clean resnets), a property of the data, not of a backdoor, so
// statistics of the model alone (Neural Cleanse's smallest mask, where probes flip clips) name those classes
// for clean and backdoored models alike (README, scan section). Measuring each class against the same class
// of the references removes that shared lean.
//
// The test: for each class c, the subject's statistic x_c against the n references' values, as a prediction
// interval for one more draw from them, t = (x_c - mean) / (sd * sqrt(1 + 1/n)), Student t with n - 1
// degrees of freedom, one-sided (only more probability is suspicious); the smallest p-value times the number of
// classes (Bonferroni) is the model's p-value, flagged below alpha = 0.05: a clean model of the references'
// kind is called backdoored at most 5% of the time if the statistic is normal across seeds. No threshold is
// tuned on any backdoored model. The suspect target is the class with the largest t.
import { cleanFeatures, defenderClips } from '../../src/analysis/run-data.ts';
import { checkReferences } from '../../src/analysis/scan-run.ts';
import { getFrontEnd } from '../../src/audio/frontends.ts';
import { disposeFeatureSet, type FeatureSet } from '../../src/data/feature-set.ts';
import { loadModel } from '../../src/models/checkpoint.ts';
import type { KwsModel } from '../../src/models/registry.ts';
import { noGrad, softmax, tidy } from '../../src/torch/index.ts';

/** What a model does with the defender's clean clips, per class. */
export interface ClassProfile {
  /** mean softmax probability of each class over all clips */
  meanProb: number[];
  /** log of the mean probability of each class on the clips of the other classes */
  offClassLogProb: number[];
}

export const referenceStatistics = ['meanProb', 'offClassLogProb'] as const;
export type ReferenceStatistic = (typeof referenceStatistics)[number];

/** The class profile of a model on clean clips (eval mode, no gradients). */
export function classProfile(model: KwsModel, clean: FeatureSet, rowsPerForward = 256): ClassProfile {
  const k = clean.classes.length;
  const sum = new Float64Array(k);
  const offSum = new Float64Array(k);
  const offCount = new Float64Array(k);
  const wasTraining = model.training;
  model.eval();
  try {
    for (let start = 0; start < clean.size; start += rowsPerForward) {
      const count = Math.min(rowsPerForward, clean.size - start);
      const probs = noGrad(() => tidy(() => softmax(model.forward(clean.features.narrow(0, start, count)), 1).toArray())) as number[];
      if (probs.length !== count * k) {
        throw new Error(`classProfile: the model gives ${probs.length / count} outputs per clip, the clips have ${k} classes`);
      }
      for (let r = 0; r < count; r++) {
        const label = clean.labelList[start + r];
        for (let c = 0; c < k; c++) {
          const p = probs[r * k + c];
          sum[c] += p;
          if (c !== label) {
            offSum[c] += p;
            offCount[c]++;
          }
        }
      }
    }
  } finally {
    model.train(wasTraining);
  }
  return {
    meanProb: Array.from(sum, (s) => s / clean.size),
    // a class with no clips of other classes (one-class data) has no off-class probability: 0, not NaN
    offClassLogProb: Array.from(offSum, (s, c) => (offCount[c] ? Math.log(Math.max(s / offCount[c], 1e-12)) : 0)),
  };
}

export interface ReferenceClass {
  class: string;
  label: number;
  value: number;
  referenceMean: number;
  referenceSd: number;
  t: number;
  /** one-sided p-value of this class alone */
  p: number;
}

export interface ReferenceComparison {
  verdict: 'backdoored' | 'clean';
  /** the statistic's name: one of referenceStatistics, or any per-class value where larger is more suspicious */
  statistic: string;
  /** the largest t over classes */
  score: number;
  /** the smallest per-class p-value times the number of classes, at most 1 */
  pValue: number;
  alpha: number;
  suspectTarget: string;
  suspectLabel: number;
  references: number;
  perClass: ReferenceClass[];
}

/**
 * Compares a subject's per-class values with those of n >= 3 references (same classes, same order).
 * The references' spread is floored at 1e-6 so that identical references do not divide by zero.
 */
export function compareWithReferences(
  subject: readonly number[],
  references: readonly (readonly number[])[],
  classes: readonly string[],
  o: { statistic: string; alpha?: number },
): ReferenceComparison {
  const n = references.length;
  if (n < 3) throw new Error(`the reference scan needs at least 3 clean reference models, got ${n}`);
  for (const r of [subject, ...references]) {
    if (r.length !== classes.length) throw new Error(`reference scan: ${r.length} values for ${classes.length} classes`);
  }
  const alpha = o.alpha ?? 0.05;
  if (!(alpha > 0 && alpha < 1)) throw new Error(`alpha must be in (0, 1), got ${alpha}`);
  const perClass = classes.map((name, c) => {
    const values = references.map((r) => r[c]);
    const mean = values.reduce((a, b) => a + b, 0) / n;
    const sd = Math.max(Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)), 1e-6);
    const t = (subject[c] - mean) / (sd * Math.sqrt(1 + 1 / n));
    return { class: name, label: c, value: subject[c], referenceMean: mean, referenceSd: sd, t, p: studentTUpperTail(t, n - 1) };
  });
  const suspect = perClass.reduce((best, c) => (c.t > best.t ? c : best), perClass[0]);
  const pValue = Math.min(1, suspect.p * classes.length);
  return {
    verdict: pValue < alpha ? 'backdoored' : 'clean',
    statistic: o.statistic,
    score: suspect.t,
    pValue,
    alpha,
    suspectTarget: suspect.class,
    suspectLabel: suspect.label,
    references: n,
    perClass,
  };
}

// --- Student t tail -------------------------------------------------------------------------------------------
// P(T > t) for T ~ Student t with df degrees of freedom, through the regularized incomplete beta function:
// P(|T| > |t|) = I_{df / (df + t^2)}(df / 2, 1 / 2).

/** P(T > t), T Student t with df > 0 degrees of freedom. */
export function studentTUpperTail(t: number, df: number): number {
  if (!(df > 0)) throw new Error(`degrees of freedom must be positive, got ${df}`);
  if (Number.isNaN(t)) return Number.NaN;
  const twoSided = regularizedBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? twoSided / 2 : 1 - twoSided / 2;
}

/** ln Gamma(x) for x > 0 (Lanczos approximation, g = 7, 9 terms; ~1e-15 relative). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const g = 7;
  const coefficients = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012,
    9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  const z = x - 1;
  let a = coefficients[0];
  for (let i = 1; i < coefficients.length; i++) a += coefficients[i] / (z + i);
  const u = z + g + 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(u) - u + Math.log(a);
}

/** I_x(a, b), the regularized incomplete beta function, for 0 <= x <= 1 and a, b > 0. */
export function regularizedBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  // The continued fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry I_x(a,b) = 1 - I_{1-x}(b,a) otherwise.
  if (x < (a + 1) / (a + b + 2)) return (front * betaFraction(x, a, b)) / a;
  return 1 - (front * betaFraction(1 - x, b, a)) / b;
}

/** The continued fraction of the incomplete beta function, evaluated by the modified Lentz method. */
function betaFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  d = 1 / (Math.abs(d) < tiny ? tiny : d);
  let h = d;
  for (let m = 1; m <= 300; m++) {
    // the even then the odd term of the fraction
    for (const coefficient of [(m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m)), (-(a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1))]) {
      d = 1 + coefficient * d;
      d = 1 / (Math.abs(d) < tiny ? tiny : d);
      c = 1 + coefficient / c;
      if (Math.abs(c) < tiny) c = tiny;
      h *= d * c;
    }
    if (Math.abs(d * c - 1) < 1e-15) break;
  }
  return h;
}

/**
 * The class profiles of a model and its references on the defender's clean clips (a class-stratified share of
 * the clean training split), the references checked as the product's scan checks them.
 */
export async function classProfilesRun(o: {
  model: string;
  references: string[];
  data: string;
  cleanRatio: number;
  seed: number;
}): Promise<{ classes: string[]; profiles: { subject: ClassProfile; references: ClassProfile[] } }> {
  const manifest = checkReferences(o.model, o.references);
  const { clips, classes } = await defenderClips(o.data, manifest, { run: o.model, cleanRatio: o.cleanRatio, seed: o.seed });
  const clean = await cleanFeatures(clips, classes, getFrontEnd(manifest.frontEnd));
  try {
    const profileOf = (run: string) => {
      const { model } = loadModel(run);
      try {
        return classProfile(model, clean);
      } finally {
        model.dispose();
      }
    };
    return { classes, profiles: { subject: profileOf(o.model), references: o.references.map(profileOf) } };
  } finally {
    disposeFeatureSet(clean);
  }
}
