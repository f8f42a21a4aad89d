// The analysis file: analysis.json (written by `kwshield analyze`, read by the HTML report) and the CSV files
// of the same numbers. The writer's fields of the agreed format come first, the others are additions a reader
// may ignore; the reader checks every part it finds, field by field, since the file may come from another
// version. Reading needs no libtorch (the report runs without it): this module imports only types of the
// analysis.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { writeJsonAtomic } from '../data/atomic.ts';
import { arr, fields, InputError, num, oneOf, optNum, optObj, optStr, str } from '../data/json-fields.ts';
import type { Embedding } from './embedding.ts';
import type { LayerGradients } from './gradients.ts';
import type { LossChanges, Zone } from './zones.ts';

export type { Zone } from './zones.ts';

export const analysisFormat = 'kwshield-analysis';

/** The zones a file may name (zones.ts zoneNames, spelt out so that reading pulls in no libtorch). */
const zones = ['clean', 'backdoor', 'hybrid', 'redundant'] as const satisfies readonly Zone[];

export interface GradientNeuron {
  index: number;
  /** of the L1 norm (the spec's a_n) */
  mean: number;
  variance: number;
  zone?: Zone;
  l2Mean: number;
  l2Variance: number;
}

export interface AnalysisFile {
  format: typeof analysisFormat;
  version: 1;
  /** absolute path of the analysed run folder */
  model: string;
  attack?: string;
  label: string;
  gradients: {
    layer: string;
    norm: 'l1';
    batches: number;
    neurons: GradientNeuron[];
    /** every analysed layer, the first being the one above */
    layers: { layer: string; batches: number; neurons: GradientNeuron[] }[];
    mode: 'eval' | 'train';
    batchSize: number;
  };
  zones?: {
    layers: string[];
    neurons: { layer: string; index: number; clc: number; blc: number; zone: Zone }[];
    counts: Record<Zone, number>;
    /** per layer, how the loss changes were computed (zones.ts) */
    methods: Record<string, string>;
    baseline: { clean: number; backdoor: number };
    zeroTolerance: number;
  };
  embedding: Embedding & { features: string };
  modelFamily: string;
  classes: string[];
  frontEnd: string;
  data: { path: string; cleanRatio: number; seed: number; cleanClips: number; triggeredClips?: number; target?: string; targetLabel?: number };
  /** what was not computed and why */
  notes: string[];
  seconds: { gradients: number; zones?: number; embedding: number };
  created: string;
}

export function gradientSection(
  layers: LayerGradients[],
  zones: LossChanges | undefined,
  o: { mode: 'eval' | 'train'; batchSize: number },
): AnalysisFile['gradients'] {
  const zoneOf = new Map((zones?.neurons ?? []).map((n) => [`${n.layer}:${n.index}`, n.zone]));
  const perLayer = layers.map((l) => ({
    layer: l.layer,
    batches: l.batches,
    neurons: l.neurons.map((n) => {
      const zone = zoneOf.get(`${l.layer}:${n.index}`);
      return { index: n.index, mean: n.l1Mean, variance: n.l1Variance, ...(zone ? { zone } : {}), l2Mean: n.l2Mean, l2Variance: n.l2Variance };
    }),
  }));
  return { layer: perLayer[0].layer, norm: 'l1', batches: perLayer[0].batches, neurons: perLayer[0].neurons, layers: perLayer, ...o };
}

const csvCell = (v: unknown): string => {
  if (v === undefined || v === null) return '';
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export function toCsv(header: string[], rows: unknown[][]): string {
  return `${[header, ...rows].map((r) => r.map(csvCell).join(',')).join('\n')}\n`;
}

/** Writes analysis<suffix>.json and gradients/zones/embedding<suffix>.csv into dir; returns the files. */
export function writeAnalysis(dir: string, file: AnalysisFile, suffix = ''): string[] {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  const put = (name: string, text: string) => {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    written.push(p);
  };
  const json = path.join(dir, `analysis${suffix}.json`);
  writeJsonAtomic(json, file);
  written.push(json);
  put(
    `gradients${suffix}.csv`,
    toCsv(
      ['layer', 'index', 'l1_mean', 'l1_variance', 'l2_mean', 'l2_variance', 'zone'],
      file.gradients.layers.flatMap((l) => l.neurons.map((n) => [l.layer, n.index, n.mean, n.variance, n.l2Mean, n.l2Variance, n.zone])),
    ),
  );
  if (file.zones) {
    put(
      `zones${suffix}.csv`,
      toCsv(
        ['layer', 'index', 'clc', 'blc', 'zone'],
        file.zones.neurons.map((n) => [n.layer, n.index, n.clc, n.blc, n.zone]),
      ),
    );
  }
  put(
    `embedding${suffix}.csv`,
    toCsv(
      ['x', 'y', 'label', 'triggered', 'predicted'],
      file.embedding.points.map((p) => [p.x, p.y, p.label, p.triggered, p.predicted]),
    ),
  );
  return written;
}

// Reading.

export interface ZoneNeuron {
  layer: string;
  index: number;
  clc: number;
  blc: number;
  zone: Zone;
}

/** A gradient row as the reader keeps it (files before the L2 columns lack them). */
export interface ReadGradientNeuron {
  index: number;
  mean: number;
  variance: number;
  zone?: Zone;
}

export interface EmbeddingPoint {
  x: number;
  y: number;
  label: string;
  triggered: boolean;
}

export interface Analysis {
  file: string;
  /** the run folder of the analysed model */
  model: string;
  attack?: string;
  /** 'before' | 'after' | any other label */
  label: string;
  /** the model's architecture (resnet, lstm, ...) when the file says */
  modelFamily?: string;
  /** the model's classes in its order, when the file says */
  classes?: string[];
  gradients?: { layer: string; norm: string; batches?: number; neurons: ReadGradientNeuron[] };
  zones?: { layers: string[]; neurons: ZoneNeuron[]; counts: Record<Zone, number> };
  /** `explained`: PCA's share of variance on each axis */
  embedding?: { method: string; seed?: number; points: EmbeddingPoint[]; explained?: number[] };
}

function countZones(neurons: ZoneNeuron[]): Record<Zone, number> {
  const counts = { clean: 0, backdoor: 0, hybrid: 0, redundant: 0 };
  for (const n of neurons) counts[n.zone]++;
  return counts;
}

export function parseAnalysis(value: unknown, file: string): Analysis {
  const f = fields(value, file);
  if (f.o.format !== analysisFormat) throw new InputError(`${file}: not a kwshield analysis file (format is ${JSON.stringify(f.o.format)})`);
  if (f.o.version !== 1) throw new InputError(`${file}: analysis format version ${JSON.stringify(f.o.version)} is not known (this report reads version 1)`);
  const analysis: Analysis = {
    file,
    model: str(f, 'model'),
    attack: optStr(f, 'attack'),
    label: optStr(f, 'label') ?? path.basename(path.dirname(file)),
    modelFamily: optStr(f, 'modelFamily'),
    classes: Array.isArray(f.o.classes) && f.o.classes.every((c) => typeof c === 'string') ? (f.o.classes as string[]) : undefined,
  };
  const g = optObj(f, 'gradients');
  if (g) {
    analysis.gradients = {
      layer: str(g, 'layer'),
      norm: optStr(g, 'norm') ?? 'l2',
      batches: optNum(g, 'batches'),
      neurons: arr(g, 'neurons').map((n, i) => {
        const p = fields(n, `${g.where} neurons[${i}]`);
        const zone = p.o.zone === undefined || p.o.zone === null ? undefined : oneOf(p, 'zone', zones);
        return { index: num(p, 'index'), mean: num(p, 'mean'), variance: Math.max(0, num(p, 'variance')), ...(zone ? { zone } : {}) };
      }),
    };
  }
  const z = optObj(f, 'zones');
  if (z) {
    const neurons = arr(z, 'neurons').map((n, i) => {
      const p = fields(n, `${z.where} neurons[${i}]`);
      return { layer: str(p, 'layer'), index: num(p, 'index'), clc: num(p, 'clc'), blc: num(p, 'blc'), zone: oneOf(p, 'zone', zones) };
    });
    const layers = Array.isArray(z.o.layers) ? z.o.layers.map(String) : [...new Set(neurons.map((n) => n.layer))];
    // Counted from the neurons rather than read, so the counts always match the points drawn.
    analysis.zones = { layers, neurons, counts: countZones(neurons) };
  }
  const e = optObj(f, 'embedding');
  if (e) {
    analysis.embedding = {
      method: str(e, 'method'),
      seed: optNum(e, 'seed'),
      explained: Array.isArray(e.o.explained) && e.o.explained.every((x) => typeof x === 'number') ? (e.o.explained as number[]) : undefined,
      points: arr(e, 'points').map((n, i) => {
        const p = fields(n, `${e.where} points[${i}]`);
        return { x: num(p, 'x'), y: num(p, 'y'), label: str(p, 'label'), triggered: p.o.triggered === true };
      }),
    };
  }
  return analysis;
}

/** The analysis files of an analysis folder: analysis.json and the compared models' analysis-<label>.json. */
export function analysisFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => /^analysis(-[\w.-]+)?\.json$/.test(name))
    .sort((a, b) => (a === 'analysis.json' ? -1 : b === 'analysis.json' ? 1 : a < b ? -1 : 1))
    .map((name) => path.join(dir, name));
}

export function readAnalysis(file: string): Analysis {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InputError(`${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InputError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  return parseAnalysis(value, path.resolve(file));
}
