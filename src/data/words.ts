// The keyword sets of the GN-FT paper (../papers/gn-ft-zhou-lin-liu.txt) over Google Speech Commands
// (Warden 2018). Order matters: a label is an index into these lists.

/** SCD-10, in the paper's order; "up" (index 2) is the backdoor target. */
export const SCD10_WORDS = ['yes', 'no', 'up', 'down', 'left', 'right', 'on', 'off', 'stop', 'go'] as const;

/** SCD-30: all 30 words of Speech Commands v0.01, alphabetical as in the dataset. */
export const SCD30_WORDS = [
  'bed',
  'bird',
  'cat',
  'dog',
  'down',
  'eight',
  'five',
  'four',
  'go',
  'happy',
  'house',
  'left',
  'marvin',
  'nine',
  'no',
  'off',
  'on',
  'one',
  'right',
  'seven',
  'sheila',
  'six',
  'stop',
  'three',
  'tree',
  'two',
  'up',
  'wow',
  'yes',
  'zero',
] as const;

/** Words added in Speech Commands v0.02 (35 words in all); their folders tell v0.02 from v0.01. */
export const V2_EXTRA_WORDS = ['backward', 'follow', 'forward', 'learn', 'visual'] as const;

export type WordSetName = 'scd10' | 'scd30';

export function wordSet(name: WordSetName): readonly string[] {
  if (name === 'scd10') return SCD10_WORDS;
  if (name === 'scd30') return SCD30_WORDS;
  throw new Error(`unknown word set '${name as string}' (known: scd10, scd30)`);
}
