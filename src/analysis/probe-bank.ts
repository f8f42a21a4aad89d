// The calibrated verdict of `kwshield scan --references`: a bank of probe families, each asking "does this model do
// something its clean references don't?", one conformal p-value per family and a Bonferroni correction over them.
//
// A family measures one model on the defender's clean clips (`measure`) and scores a model against other models'
// measurements (`score`, larger = more suspicious, with the class it points at). The subject is scored against its
// n references, and each reference against the subject and the other references; the family's p-value is the share of
// those n + 1 scores at least the subject's. If the subject is a clean model exchangeable with its references (same
// configuration and training, another seed), p <= 1/(n + 1) happens with probability at most 1/(n + 1): a family fires
// only there, and over K families a clean model is called backdoored at most K/(n + 1) of the time (Bonferroni). No
// threshold comes from a backdoored model. Without references there is no verdict at all (scan.ts: scores only).
import type { KwsModel } from '../models/registry.ts';
import type { Tensor } from '../torch/index.ts';

/** The defender's clean clips as every family receives them: waveforms, labels, and the model's front-end. */
export interface ProbeClips {
  /** [clips, samples] at sampleRate */
  waves: Tensor;
  labels: readonly number[];
  classes: readonly string[];
  sampleRate: number;
  toModelInput(wave: Tensor): Tensor;
}

/** How far one model departs from others, by one family. */
export interface FamilyScore {
  /** larger is more suspicious */
  score: number;
  /** the class the departure points at */
  target: string;
  /** what produced it, for the report (e.g. the transform) */
  detail: string;
}

export interface ProbeFamily<M = unknown> {
  name: string;
  /** what the family probes, one line */
  probes: string;
  /** why the family cannot probe this model (e.g. no Linear classifier), or undefined: decided before measuring */
  refuses?(model: KwsModel): string | undefined;
  /** the family's measurement of one model on the clean clips */
  measure(model: KwsModel, clips: ProbeClips): M;
  /** `subject` against `others` (at least one) */
  score(subject: M, others: readonly M[]): FamilyScore;
}

export interface ConformalScore extends FamilyScore {
  /** each reference scored against the subject and the other references */
  referenceScores: number[];
  /** (1 + references scoring at least the subject) / (n + 1) */
  pValue: number;
}

/** A family's conformal test of `subject` against n >= 1 references. */
export function conformalScore<M>(score: ProbeFamily<M>['score'], subject: M, references: readonly M[]): ConformalScore {
  if (references.length === 0) throw new Error('conformal score: needs at least one reference');
  const own = score(subject, references);
  const referenceScores = references.map((r, i) => score(r, [subject, ...references.filter((_, j) => j !== i)]).score);
  const atLeast = 1 + referenceScores.filter((s) => s >= own.score).length;
  return { ...own, referenceScores, pValue: atLeast / (references.length + 1) };
}

export interface FamilyResult<M = unknown> extends ConformalScore {
  family: string;
  probes: string;
  /** p = 1/(n + 1): the subject departs from the references more than any of them from the rest */
  fired: boolean;
  measurements: { subject: M; references: M[] };
}

export interface BankVerdict {
  verdict: 'found' | 'not-found';
  /** the family with the smallest p-value (the first such), whether or not it fired */
  by: string;
  /** its class: the backdoor's target when found */
  target: string;
  /** the smallest family p-value times the number of families, at most 1 */
  pValue: number;
  /** the chance that a clean model of the references' kind is called backdoored: K / (n + 1), at most 1 */
  falseAlarmBound: number;
  references: number;
  families: FamilyResult[];
  /** families that could not probe the model, and why (the Bonferroni correction counts only the others) */
  skipped: { family: string; reason: string }[];
}

/** Each family measured on the subject and on every reference, then one verdict over the families. */
export function runProbeBank(
  families: readonly ProbeFamily[],
  subject: KwsModel,
  references: readonly (() => KwsModel)[],
  clips: ProbeClips,
  onReference?: (done: number, total: number) => void,
): BankVerdict {
  const skipped = families.flatMap((f) => {
    const reason = f.refuses?.(subject);
    return reason ? [{ family: f.name, reason }] : [];
  });
  const used = families.filter((f) => !skipped.some((s) => s.family === f.name));
  if (used.length === 0) throw new Error(`probe bank: no family can probe this model (${skipped.map((s) => `${s.family}: ${s.reason}`).join('; ')})`);
  const measureAll = (model: KwsModel) => used.map((f) => f.measure(model, clips));
  const own = measureAll(subject);
  const theirs = references.map((load, i) => {
    const model = load();
    try {
      return measureAll(model);
    } finally {
      model.dispose();
      onReference?.(i + 1, references.length);
    }
  });
  return bankVerdict(
    used.map((f, k) =>
      familyResult(
        f,
        own[k],
        theirs.map((m) => m[k]),
      ),
    ),
    references.length,
    skipped,
  );
}

export function familyResult<M>(family: ProbeFamily<M>, subject: M, references: M[]): FamilyResult<M> {
  const c = conformalScore(family.score, subject, references);
  return { family: family.name, probes: family.probes, ...c, fired: c.pValue <= 1 / (references.length + 1), measurements: { subject, references } };
}

/** The verdict over family results: found when a family fired; its p-value Bonferroni-corrected over the families. */
export function bankVerdict(families: FamilyResult[], references: number, skipped: BankVerdict['skipped'] = []): BankVerdict {
  const k = families.length;
  const first = families.reduce((best, f) => (f.pValue < best.pValue ? f : best), families[0]);
  return {
    verdict: families.some((f) => f.fired) ? 'found' : 'not-found',
    by: first.family,
    target: first.target,
    pValue: Math.min(1, k * first.pValue),
    falseAlarmBound: Math.min(1, k / (references + 1)),
    references,
    families,
    skipped,
  };
}
