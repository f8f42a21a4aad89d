// Display names and the fixed order of models, attacks and defenses, so that every table and figure lists
// them the same way. The orders are the GN-FT paper's (../papers/gn-ft-zhou-lin-liu.txt, Tables I-II);
// names the paper does not know come after, alphabetically.

const modelOrder = ['resnet', 'lstm', 'smallcnn', 'kwt', 'eat'];
const attackOrder = ['badnets', 'ultrasonic', 'jingleback', 'daba', 'flowmur', 'pbsm', 'vsvc-dsp'];
const defenseOrder = ['ft', 'fp', 'gnft'];
const recipeOrder = ['paper', 'default'];

const modelNames: Record<string, string> = { resnet: 'ResNet', lstm: 'LSTM', smallcnn: 'Small CNN', kwt: 'KWT', eat: 'EAT' };
const attackNames: Record<string, string> = {
  badnets: 'Audio BadNets',
  ultrasonic: 'Ultrasonic',
  jingleback: 'JingleBack',
  daba: 'DABA',
  flowmur: 'FlowMur',
  pbsm: 'PBSM',
  'vsvc-dsp': 'VSVC (DSP)',
};
const defenseNames: Record<string, string> = { none: 'No Defense', ft: 'FT', fp: 'FP', gnft: 'GN-FT', nft: 'NFT', ngf: 'NGF', clp: 'CLP' };

export const modelName = (name: string): string => modelNames[name] ?? name;
export const attackName = (name: string | undefined): string => (name === undefined ? 'no attack' : (attackNames[name] ?? name));
export const defenseName = (name: string): string => defenseNames[name] ?? name;

/** Sort key position of `name` in a known order; unknown names after every known one. */
function rank(order: readonly string[], name: string): number {
  const i = order.indexOf(name);
  return i < 0 ? order.length : i;
}

function byOrder(order: readonly string[]): (a: string, b: string) => number {
  return (a, b) => rank(order, a) - rank(order, b) || (a < b ? -1 : a > b ? 1 : 0);
}

export const compareModels = byOrder(modelOrder);
export const compareAttacks = byOrder(attackOrder);
const compareDefenseNames = byOrder(defenseOrder);
const compareRecipes = byOrder(recipeOrder);

/** A defense setting as a table column: the defense, its recipe, and option overrides if any. */
export interface DefenseSetting {
  defense: string;
  recipe?: string;
  /** `key=value` pairs of the overrides, sorted; '' for none */
  overrides: string;
}

export const noDefenseKey = 'none';

export function settingKey(s: DefenseSetting): string {
  return [s.defense, s.recipe ?? '', s.overrides].join('|');
}

export function settingLabel(s: DefenseSetting): string {
  const parts = [s.recipe, s.overrides].filter((p) => p);
  return parts.length ? `${defenseName(s.defense)} (${parts.join(', ')})` : defenseName(s.defense);
}

/** ft, fp, gnft (paper), gnft (default), then other defenses alphabetically; within one, recipes paper, default, others. */
export function compareSettings(a: DefenseSetting, b: DefenseSetting): number {
  return (
    compareDefenseNames(a.defense, b.defense) ||
    compareRecipes(a.recipe ?? '', b.recipe ?? '') ||
    (a.overrides < b.overrides ? -1 : a.overrides > b.overrides ? 1 : 0)
  );
}

/** Options as `key=value` pairs in key order (the part of a setting's name that says how it differs). */
export function overridesLabel(options: Record<string, unknown> | undefined): string {
  if (!options) return '';
  return Object.keys(options)
    .sort()
    .map((k) => `${k}=${typeof options[k] === 'string' ? options[k] : JSON.stringify(options[k])}`)
    .join(' ');
}

/** 0.9876 -> '98.8' (percent with `digits` decimals), or 'n/a'. */
export function pct(x: number | undefined, digits = 1): string {
  return x === undefined || !Number.isFinite(x) ? 'n/a' : (100 * x).toFixed(digits);
}
