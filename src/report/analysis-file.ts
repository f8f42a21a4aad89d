// An analysis folder's analysis.json ({"format": "kwshield-analysis", "version": 1}, written by
// `kwshield analyze`): per-neuron gradient norms, CLC/BLC neuron zones and a 2-D feature embedding of
// one model. Each part is optional; a part that is present is checked field by field.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { arr, fields, InputError, num, oneOf, optNum, optObj, optStr, str } from './validate.ts';

export const zones = ['clean', 'backdoor', 'hybrid', 'redundant'] as const;
export type Zone = (typeof zones)[number];

export interface GradientNeuron {
  index: number;
  mean: number;
  variance: number;
  zone?: Zone;
}

export interface ZoneNeuron {
  layer: string;
  index: number;
  clc: number;
  blc: number;
  zone: Zone;
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
  gradients?: { layer: string; norm: string; batches?: number; neurons: GradientNeuron[] };
  zones?: { layers: string[]; neurons: ZoneNeuron[]; counts: Record<Zone, number> };
  /** `explained`: PCA's share of variance on each axis */
  embedding?: { method: string; seed?: number; points: EmbeddingPoint[]; explained?: number[] };
}

export const analysisFormat = 'kwshield-analysis';

function zoneCounts(neurons: ZoneNeuron[]): Record<Zone, number> {
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
    analysis.zones = { layers, neurons, counts: zoneCounts(neurons) };
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
