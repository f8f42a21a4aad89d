// Figures of an attack run's example clips: clean | triggered | difference, as the model's input features
// and as STFT spectrograms of the WAV files. Each heatmap is a PNG placed on the figure's axes.

import type { PreparedExampleSet } from './examples.ts';
import type { Figure, FigureOrMissing, VlSpec } from './figures.ts';
import { attackName, modelName } from './names.ts';
import { pngDataUri } from './png.ts';
import { difference, type Grid, gridPng, robustRange, symmetricRange } from './spectrogram.ts';

interface HeatPanel {
  grid: Grid;
  title: string;
  range: [number, number];
  scheme: string;
  xTitle: boolean;
  yTitle: boolean;
}

interface HeatLegend {
  title: string;
  range: [number, number];
  scheme: string;
}

function legendLayer(l: HeatLegend, k: number, height: number): VlSpec {
  return {
    data: { values: [{ [`v${k}`]: l.range[0] }, { [`v${k}`]: l.range[1] }] },
    mark: { type: 'point', opacity: 0, aria: false },
    encoding: {
      color: {
        field: `v${k}`,
        type: 'quantitative',
        title: l.title,
        scale: { scheme: l.scheme, domain: l.range },
        legend: {
          gradientLength: Math.max(60, height - 24),
          format: '.3~g',
          orient: 'right',
          // A difference scale names its centre: 0, no change.
          ...(l.scheme === 'blueorange' ? { values: [l.range[0], 0, l.range[1]] } : {}),
        },
      },
    },
  };
}

function heatPanel(p: HeatPanel, width: number, height: number): VlSpec {
  const url = pngDataUri(gridPng(p.grid, p.range, p.scheme));
  const seconds = p.grid.frames * p.grid.secondsPerFrame;
  const layers: VlSpec[] = [
    {
      data: { values: [{ url }] },
      mark: { type: 'image', width, height, aspect: false, align: 'left', baseline: 'top', aria: false },
      encoding: {
        url: { field: 'url', type: 'nominal' },
        x: { datum: 0, type: 'quantitative', scale: { domain: [0, seconds], nice: false }, axis: { title: p.xTitle ? 'time (s)' : null, tickCount: 5 } },
        y: {
          datum: p.grid.yMax,
          type: 'quantitative',
          scale: { domain: [0, p.grid.yMax], nice: false },
          axis: { title: p.yTitle ? p.grid.binTitle : null, tickCount: 4 },
        },
      },
    },
  ];
  return { width, height, title: { text: p.title, fontSize: 12, fontWeight: 'normal' }, layer: layers };
}

/** A column of its own for the colour legends, so that they do not push the panels of one column out of line. */
function legendColumn(legends: HeatLegend[], height: number): VlSpec {
  return { width: 1, height, view: { stroke: null }, layer: legends.map((l, k) => legendLayer(l, k, height)), resolve: { scale: { color: 'independent' } } };
}

function exampleLabel(index: number, word: string): string {
  return `clip ${String(index).padStart(2, '0')}${word ? ` ('${word}')` : ''}`;
}

/** Clean | triggered | triggered − clean for each example clip, as the model sees it or as an STFT spectrogram. */
function examplesFigure(prepared: PreparedExampleSet, which: 'features' | 'stft', n: number): Figure | undefined {
  const examples = prepared.examples.filter((e) => e[which]);
  if (examples.length === 0) return undefined;
  const job = prepared.set.job;
  const range = robustRange(examples.flatMap((e) => Array.from(e[which]!.clean.values)));
  const diffs = examples.map((e) => difference(e[which]!.clean, e[which]!.triggered));
  const diffRange = symmetricRange(diffs.flatMap((d) => Array.from(d.values)));
  const first = examples[0][which]!.clean;
  const height = which === 'stft' ? 120 : 90;
  const last = examples.length - 1;
  // Columns (clean | triggered | difference) of one panel per clip; both legends once, right of the last column.
  const column = (kind: 'clean' | 'triggered' | 'difference') =>
    examples.map((e, i) =>
      heatPanel(
        {
          grid: kind === 'difference' ? diffs[i] : e[which]![kind],
          title: `${exampleLabel(e.index, e.word)}: ${kind === 'difference' ? 'triggered − clean' : kind}`,
          range: kind === 'difference' ? diffRange : range,
          scheme: kind === 'difference' ? 'blueorange' : 'viridis',
          xTitle: i === last,
          yTitle: kind === 'clean',
        },
        180,
        height,
      ),
    );
  const subject = `${attackName(job.attack)} on ${modelName(job.model)}`;
  const features = which === 'features';
  const hop = Math.round(first.secondsPerFrame * 10000) / 10;
  return {
    slug: `examples-${which}-${n}`,
    title: features ? `What the model hears: ${subject}` : `Spectrograms of the example clips: ${subject}`,
    caption: features
      ? `The model's input (${job.frontEnd ?? 'features'}) for test clips without the trigger (left) and with it (middle), and the difference (right): time on x, ${first.binTitle} on y. The two left columns share one colour scale spanning the 5th to 99.5th percentile of the clean clips (cells beyond are drawn in the end colours); the difference (right) is blue where the trigger lowers a value, orange where it raises it, white where it leaves it alone; its scale spans the 95th percentile of the changes, so the largest ones are drawn in the end colours.`
      : `Log-magnitude STFT spectrograms (Hann window, ${hop} ms hop) of the clean and triggered WAV files (left, middle) and their difference (right: orange where the trigger adds power, blue where it removes it): time on x, frequency up to half the sample rate on y. Listen to the clips beside the figure.`,
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      hconcat: [
        { vconcat: column('clean') },
        { vconcat: column('triggered') },
        { vconcat: column('difference') },
        legendColumn(
          [
            { title: first.valueTitle, range, scheme: 'viridis' },
            { title: `Δ ${first.valueTitle}`, range: diffRange, scheme: 'blueorange' },
          ],
          height,
        ),
      ],
      spacing: 14,
    },
  };
}

export function exampleFigures(prepared: readonly PreparedExampleSet[]): FigureOrMissing[] {
  const slug = 'examples';
  const title = 'Clean and triggered examples';
  const figures = prepared.flatMap((p, i) =>
    [examplesFigure(p, 'features', i + 1), examplesFigure(p, 'stft', i + 1)].filter((f): f is Figure => f !== undefined),
  );
  if (figures.length === 0) {
    return [
      {
        slug,
        title,
        missing:
          'No attack run with examples was found. Run the attack with examples (`kwshield attack ... --examples 3 --out RUN`) and give RUN as an input (result files point at it with runs.attack).',
      },
    ];
  }
  return figures;
}
