// analysis.json (read by the HTML report) and the CSV files of the same numbers. The fields of the
// agreed format come first; the others are additions a reader may ignore.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { writeJsonAtomic } from '../data/atomic.ts';
import type { Embedding } from './embedding.ts';
import type { LayerGradients } from './gradients.ts';
import type { LossChanges, Zone } from './zones.ts';

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
  format: 'kwshield-analysis';
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
