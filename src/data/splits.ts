// The three splits of Speech Commands, in the order the dataset's lists define them.

export type SplitName = 'train' | 'validation' | 'test';

export const SPLIT_NAMES: readonly SplitName[] = ['train', 'validation', 'test'];
