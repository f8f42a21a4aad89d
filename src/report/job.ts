// One measured job, whatever it was read from (a grid result file, an attack run folder, a defense run
// folder): the report's tables, headline and provenance are built from these and nothing else.

export interface Metrics {
  /** clean accuracy on the clean test split */
  ca: number;
  /** attack success rate on the triggered non-target test clips (a clean model's: its false-trigger rate) */
  asr: number;
  /** robust accuracy: triggered clips still classified as their true word */
  ra: number;
}

export type JobKind = 'clean' | 'attack' | 'defense';

export interface Machine {
  hostname?: string;
  cpus?: number;
  cpuModel?: string;
  memGb?: number;
  node?: string;
  platform?: string;
}

export interface Job {
  /** the result id (16 hex) or, for a run folder, its folder name */
  id: string;
  /** the file or folder the job was read from */
  source: string;
  status: 'ok' | 'failed';
  error?: string;
  kind: JobKind;
  /** the Speech Commands folder */
  data?: string;
  /** a short name of the data set (the folder's name when nothing better is known) */
  dataName: string;
  /** word selection: scd10, scd30, ... */
  words?: string;
  model: string;
  frontEnd?: string;
  attack?: string;
  attackSeed?: number;
  poisonRatio?: number;
  target?: string;
  defense?: string;
  recipe?: string;
  /** the attack's options (the grid's overrides, or a run folder's resolved options) */
  attackOptions?: Record<string, unknown>;
  /** option overrides of the defense (defense jobs) */
  options?: Record<string, unknown>;
  /** the training recipe of the attacked model (fast | paper) */
  trainRecipe?: string;
  cleanRatio?: number;
  seed: number;
  /** training epochs of the (backdoored or clean) model */
  epochs?: number;
  /** the job's own model: defended (defense jobs), backdoored (attack jobs), clean (clean jobs) */
  metrics?: Metrics;
  /** defense jobs: the backdoored model before the defense */
  before?: Metrics;
  der?: number;
  /** attack jobs: the clean model of the same configuration */
  clean?: Metrics;
  runs: { model?: string; attack?: string; analysis?: string };
  seconds?: number;
  date?: string;
  machine?: Machine;
  versions?: Record<string, string>;
}
