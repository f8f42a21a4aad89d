// Figures of a neuron analysis (analysis.json from `kwshield analyze`), before and after a defense side by
// side: per-neuron gradient norms (the paper's Fig. 2), CLC/BLC zones (Figs. 3-4) and feature embeddings
// (Fig. 5). Pure functions from analyses to Vega-Lite specs.
import type { Analysis, Zone } from '../analysis/analysis-file.ts';
import { classColours, type FigureOrMissing, pick, zoneColours, zoneOrder } from './figures.ts';

/** One analysis in its figure group (a model x attack), with the label the panel shows. */
export interface AnalysisPanel {
  group: string;
  analysis: Analysis;
}

const labelRank = (label: string) => (label === 'before' ? 0 : label === 'after' ? 1 : 2);

function groupPanels<T extends AnalysisPanel>(panels: readonly T[]): [string, T[]][] {
  const groups = new Map<string, T[]>();
  for (const p of panels) groups.set(p.group, [...(groups.get(p.group) ?? []), p]);
  for (const list of groups.values())
    list.sort(
      (a, b) =>
        labelRank(a.analysis.label) - labelRank(b.analysis.label) || (a.analysis.label < b.analysis.label ? -1 : a.analysis.label > b.analysis.label ? 1 : 0),
    );
  return [...groups.entries()];
}

export const analyzeHow =
  'Make one with `kwshield analyze --model RUN --data DATA --attack-of ATTACK-RUN --out DIR` (the backdoored model is labelled before; add the defended model to compare, labelled after) and pass `--analysis DIR`, or give result files whose runs.analysis points at it.';

/** The zone colour scale over the zones present (in the paper's order; 'unknown' last). */
const zoneLegend = (present: ReadonlySet<string>) => {
  const domain = [...zoneOrder, 'unknown'].filter((z) => present.has(z));
  return {
    field: 'zone',
    type: 'nominal',
    title: 'neuron zone',
    scale: { domain, range: domain.map((z) => (z === 'unknown' ? '#4c78a8' : zoneColours[z as Zone])) },
  };
};

/** Per-neuron mean gradient norm on clean inputs with ± 1 std bars, coloured by zone (the paper's Fig. 2). */
export function gradientFigures(panels: readonly AnalysisPanel[]): FigureOrMissing[] {
  const slug = 'neuron-gradients';
  const title = 'Per-neuron gradient norms';
  const withGradients = panels.filter((p) => p.analysis.gradients?.neurons.length);
  if (withGradients.length === 0) return [{ slug, title, missing: `No analysis with per-neuron gradients was found. ${analyzeHow}` }];
  return groupPanels(withGradients).map(([group, list], gi) => {
    const rows = list.flatMap((p) =>
      p.analysis.gradients!.neurons.map((n) => {
        const sd = Math.sqrt(n.variance);
        return { label: p.analysis.label, index: n.index, mean: n.mean, lo: Math.max(0, n.mean - sd), hi: n.mean + sd, zone: n.zone ?? 'unknown' };
      }),
    );
    const g = list[0].analysis.gradients!;
    const present = new Set(rows.map((r) => r.zone));
    const x = { field: 'index', type: 'quantitative', title: `neuron (channel) index in ${g.layer}`, axis: { tickMinStep: 1, format: 'd' } };
    const y = { field: 'mean', type: 'quantitative', title: `mean ${g.norm.toUpperCase()} gradient norm (± 1 std)` };
    return {
      slug: `${slug}-${gi + 1}`,
      title: `${title}: ${group}`,
      caption: `Each neuron of ${g.layer}: the mean norm of the loss gradient with respect to its weights over ${g.batches ?? 'several'} batches of clean clips, with a bar of ± 1 standard deviation; colour is its zone from the CLC/BLC analysis when known. The paper's Fig. 2: in a backdoored model, backdoor and hybrid neurons show larger gradients on clean inputs than clean neurons, which is what GN-FT penalises.`,
      spec: {
        $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
        data: { values: rows },
        hconcat: list.map((p) => ({
          width: 340,
          height: 200,
          title: `${p.analysis.label}`,
          transform: [{ filter: { field: 'label', equal: p.analysis.label } }],
          layer: [
            {
              mark: { type: 'rule', opacity: 0.6 },
              encoding: { x, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' }, color: zoneLegend(present) },
            },
            { mark: { type: 'point', filled: true, size: 28 }, encoding: { x, y, color: zoneLegend(present) } },
          ],
        })),
        resolve: { scale: { y: 'shared', color: 'shared' } },
      },
    };
  });
}

const zoneCorners: { zone: Zone; name: string; sx: 1 | -1; sy: 1 | -1 }[] = [
  { zone: 'hybrid', name: 'H-zone (hybrid)', sx: 1, sy: 1 },
  { zone: 'backdoor', name: 'B-zone (backdoor)', sx: -1, sy: 1 },
  { zone: 'clean', name: 'C-zone (clean)', sx: 1, sy: -1 },
  { zone: 'redundant', name: 'R-zone (redundant)', sx: -1, sy: -1 },
];

/** CLC against BLC per neuron, before and after a defense, the four zones labelled with their counts (the paper's Figs. 3-4). */
export function zoneFigures(panels: readonly AnalysisPanel[]): FigureOrMissing[] {
  const slug = 'neuron-zones';
  const title = 'Neuron zones (CLC/BLC)';
  const withZones = panels.filter((p) => p.analysis.zones?.neurons.length);
  if (withZones.length === 0) return [{ slug, title, missing: `No analysis with neuron zones (CLC/BLC) was found. ${analyzeHow}` }];
  return groupPanels(withZones).map(([group, list], gi) => {
    const extent = Math.max(1e-6, ...list.flatMap((p) => p.analysis.zones!.neurons.flatMap((n) => [Math.abs(n.clc), Math.abs(n.blc)]))) * 1.15;
    const domain = [-extent, extent];
    const x = { field: 'clc', type: 'quantitative', title: 'CLC: clean loss change when pruned (nats)', scale: { domain, nice: false } };
    const y = { field: 'blc', type: 'quantitative', title: 'BLC: backdoor loss change when pruned (nats)', scale: { domain, nice: false } };
    const panel = (p: AnalysisPanel) => {
      const z = p.analysis.zones!;
      const labels = zoneCorners.map((c) => ({
        mark: {
          type: 'text',
          align: c.sx > 0 ? 'right' : 'left',
          baseline: c.sy > 0 ? 'top' : 'bottom',
          fontSize: 12,
          color: zoneColours[c.zone],
          fontWeight: 'bold',
        },
        data: { values: [{ clc: 0.97 * c.sx * extent, blc: 0.97 * c.sy * extent, text: `${c.name}: ${z.counts[c.zone]}` }] },
        encoding: { x: { field: 'clc', type: 'quantitative' }, y: { field: 'blc', type: 'quantitative' }, text: { field: 'text' } },
      }));
      return {
        width: 330,
        height: 330,
        title: `${p.analysis.label} (${z.neurons.length} neurons of ${z.layers.join(', ')})`,
        layer: [
          { data: { values: [{ v: 0 }] }, mark: { type: 'rule', color: '#888', strokeDash: [4, 3] }, encoding: { x: { field: 'v', type: 'quantitative' } } },
          { data: { values: [{ v: 0 }] }, mark: { type: 'rule', color: '#888', strokeDash: [4, 3] }, encoding: { y: { field: 'v', type: 'quantitative' } } },
          {
            data: { values: z.neurons.map((n) => ({ clc: n.clc, blc: n.blc, zone: n.zone, layer: n.layer })) },
            mark: { type: 'point', filled: true, size: 26, opacity: 0.8 },
            encoding: { x, y, color: zoneLegend(new Set(zoneOrder)) },
          },
          ...labels,
        ],
      };
    };
    return {
      slug: `${slug}-${gi + 1}`,
      title: `${title}: ${group}`,
      caption:
        "Each point is a neuron: x is how much the clean loss rises when it is pruned (CLC), y how much the loss of triggered clips toward the target rises (BLC). The zero lines split the plane into the paper's four zones (Figs. 3-4): C (clean, bottom right), B (backdoor, top left), H (hybrid, top right) and R (redundant, bottom left); the counts are in the corners. A defense that works empties the B and H zones.",
      spec: { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', hconcat: list.map(panel), resolve: { scale: { color: 'shared' } } },
    };
  });
}

/** 2-D embeddings of penultimate features, clean clips by class, triggered clips black (the paper's Fig. 5). */
export function embeddingFigures(panels: readonly AnalysisPanel[]): FigureOrMissing[] {
  const slug = 'embeddings';
  const title = 'Feature embeddings';
  const withPoints = panels.filter((p) => p.analysis.embedding?.points.length);
  if (withPoints.length === 0) return [{ slug, title, missing: `No analysis with a feature embedding was found. ${analyzeHow}` }];
  return groupPanels(withPoints).map(([group, list], gi) => {
    // The model's class order when the file gives it, else alphabetical: the same colours in every panel.
    const seen = new Set(list.flatMap((p) => p.analysis.embedding!.points.filter((q) => !q.triggered).map((q) => q.label)));
    const order = list[0].analysis.classes ?? [...seen].sort();
    const classes = [...order.filter((c) => seen.has(c)), ...[...seen].filter((c) => !order.includes(c)).sort()];
    const domain = [...classes, 'triggered (any class)'];
    const range = [...classes.map((_, i) => pick(classColours, i)), '#000000'];
    const panel = (p: AnalysisPanel) => {
      const e = p.analysis.embedding!;
      const axis = e.method === 'pca' ? 'PC' : `${e.method === 'tsne' ? 't-SNE' : e.method} dimension`;
      const unit = (k: number) =>
        e.method === 'pca' && e.explained?.[k] !== undefined ? `${Math.round(100 * e.explained[k])}% of variance` : 'arbitrary units';
      const points = e.points.map((q) => ({ x: q.x, y: q.y, group: q.triggered ? 'triggered (any class)' : q.label, triggered: q.triggered }));
      const enc = (triggered: boolean) => ({
        transform: [{ filter: triggered ? 'datum.triggered' : '!datum.triggered' }],
        mark: { type: 'point', filled: true, size: triggered ? 22 : 18, opacity: triggered ? 0.85 : 0.7 },
        encoding: {
          x: { field: 'x', type: 'quantitative', title: `${axis} 1 (${unit(0)})`, scale: { zero: false }, axis: { labels: false, ticks: false, grid: false } },
          y: { field: 'y', type: 'quantitative', title: `${axis} 2 (${unit(1)})`, scale: { zero: false }, axis: { labels: false, ticks: false, grid: false } },
          color: { field: 'group', type: 'nominal', title: 'class', scale: { domain, range } },
        },
      });
      return {
        width: 300,
        height: 300,
        title: `${p.analysis.label} (${e.method}${e.seed !== undefined ? `, seed ${e.seed}` : ''})`,
        data: { values: points },
        layer: [enc(false), enc(true)],
      };
    };
    return {
      slug: `${slug}-${gi + 1}`,
      title: `${title}: ${group}`,
      caption:
        "The model's features of test clips mapped to two dimensions: clean clips coloured by their word, triggered clips black. Before a defense the triggered clips form their own cluster (the backdoor has a feature of its own); after a defense that works they scatter among the clean classes (the paper's Fig. 5). Positions in the two panels are not comparable.",
      spec: { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', hconcat: list.map(panel), resolve: { scale: { color: 'shared' } } },
    };
  });
}
