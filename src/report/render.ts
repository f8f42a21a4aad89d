// Vega-Lite spec -> SVG (Vega's headless View.toSVG(), text measured with DejaVu Sans's own widths) and
// SVG -> PNG (resvg with DejaVu Sans loaded from its file and no system fonts), so a figure looks the same
// on every machine. Vega may fetch nothing: its loader refuses every URL but inline data: images.
import { existsSync } from 'node:fs';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { type FontMetrics, loadFontMetrics } from './font-metrics.ts';

export const fontFiles = {
  regular: '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
  bold: '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf',
};
export const fontFamily = 'DejaVu Sans';

/** The look shared by every figure: one font, readable sizes, left-aligned titles. */
export const figureConfig = {
  font: `${fontFamily}, sans-serif`,
  // The page labels each figure as a whole (role=img + its caption); per-mark ARIA labels would only bloat it.
  aria: false,
  background: 'white',
  padding: 8,
  view: { stroke: '#d0d0d0' },
  axis: { labelFontSize: 12, titleFontSize: 13, titleFontWeight: 'normal', titleColor: '#222', labelColor: '#333', gridColor: '#ececec' },
  legend: { labelFontSize: 12, titleFontSize: 13, titleFontWeight: 'normal', titleColor: '#222', symbolSize: 90 },
  header: { labelFontSize: 13, titleFontSize: 13, titleFontWeight: 'normal' },
  title: { fontSize: 14, fontWeight: 'bold', anchor: 'start', color: '#222', offset: 8 },
  text: { fontSize: 12 },
} as const;

interface Fonts {
  regular: FontMetrics;
  bold: FontMetrics;
}

let fonts: Fonts | null | undefined;

/** DejaVu Sans metrics, or null when the font files are missing (then Vega estimates and resvg uses system fonts). */
export function dejaVu(): Fonts | null {
  if (fonts === undefined) {
    fonts =
      existsSync(fontFiles.regular) && existsSync(fontFiles.bold)
        ? { regular: loadFontMetrics(fontFiles.regular), bold: loadFontMetrics(fontFiles.bold) }
        : null;
    if (fonts) useFontMetrics(fonts);
  }
  return fonts;
}

type TextItem = { fontSize?: number; fontWeight?: string | number };

function useFontMetrics(f: Fonts): void {
  const metrics = (vega as unknown as { textMetrics: { width: (item: TextItem, text: unknown) => number } }).textMetrics;
  metrics.width = (item, text) => {
    const size = item.fontSize != null ? +item.fontSize || 0 : 11;
    const line = text == null ? '' : String(text).trim();
    const bold = item.fontWeight === 'bold' || Number(item.fontWeight) >= 600;
    return (bold ? f.bold : f.regular).width(line, size);
  };
}

/** A loader that lets Vega show inline images (data: URIs) and fetch nothing. */
function offlineLoader() {
  const refuse = (uri: string) => Promise.reject(new Error(`report figures load nothing; '${uri.slice(0, 40)}' must be inline data`));
  return {
    sanitize: (uri: string) => (uri.startsWith('data:') ? Promise.resolve({ href: uri }) : refuse(uri)),
    load: (uri: string) => refuse(uri),
    file: (uri: string) => refuse(uri),
    http: (uri: string) => refuse(uri),
  };
}

/** Makes every id in one figure's SVG unique on the page (Vega numbers clip paths from 1 in each figure). */
export function prefixIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, (_, id) => `id="${prefix}-${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_, id) => `url(#${prefix}-${id})`)
    .replace(/href="#([^"]+)"/g, (_, id) => `href="#${prefix}-${id}"`);
}

export async function specToSvg(spec: TopLevelSpec): Promise<string> {
  dejaVu();
  const withConfig = { ...spec, config: { ...figureConfig, ...(spec.config ?? {}) } } as TopLevelSpec;
  const compiled = compile(withConfig).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', loader: offlineLoader() as unknown as vega.Loader });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The SVG as a PNG at `scale` times its size, on white. */
export function svgToPng(svg: string, scale = 2): Uint8Array {
  const f = dejaVu();
  // Heatmap images are one pixel per cell: scale them up without smoothing, as the page does (CSS pixelated).
  const crisp = svg.replace(/<image /g, '<image image-rendering="optimizeSpeed" ');
  const resvg = new Resvg(crisp, {
    background: 'white',
    fitTo: { mode: 'zoom', value: scale },
    font: f
      ? { fontFiles: [fontFiles.regular, fontFiles.bold], loadSystemFonts: false, defaultFontFamily: fontFamily, sansSerifFamily: fontFamily }
      : { loadSystemFonts: true },
  });
  return resvg.render().asPng();
}
