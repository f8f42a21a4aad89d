// Text widths from a TrueType font's own advance widths (cmap format 4 + hmtx), so that Vega lays out
// labels, legends and titles for the font the figures are drawn with (DejaVu Sans) instead of its
// generic estimate (0.8 em a character, far too wide), and the layout is the same on every machine.
import { readFileSync } from 'node:fs';

export interface FontMetrics {
  /** width of `text` at `fontSize` px */
  width(text: string, fontSize: number): number;
}

function table(view: DataView, tag: string): number {
  const count = view.getUint16(4);
  for (let i = 0; i < count; i++) {
    const at = 12 + 16 * i;
    const name = String.fromCharCode(view.getUint8(at), view.getUint8(at + 1), view.getUint8(at + 2), view.getUint8(at + 3));
    if (name === tag) return view.getUint32(at + 8);
  }
  throw new Error(`font has no '${tag}' table`);
}

/** code point -> glyph index, from the Unicode BMP (platform 3, encoding 1, format 4) subtable. */
function glyphMap(view: DataView): Map<number, number> {
  const cmap = table(view, 'cmap');
  const count = view.getUint16(cmap + 2);
  let sub = -1;
  for (let i = 0; i < count; i++) {
    const platform = view.getUint16(cmap + 4 + 8 * i);
    const encoding = view.getUint16(cmap + 6 + 8 * i);
    const offset = view.getUint32(cmap + 8 + 8 * i);
    if (platform === 3 && encoding === 1 && view.getUint16(cmap + offset) === 4) sub = cmap + offset;
  }
  if (sub < 0) throw new Error('font has no format-4 Unicode cmap');
  const segments = view.getUint16(sub + 6) / 2;
  const ends = sub + 14;
  const starts = ends + 2 * segments + 2;
  const deltas = starts + 2 * segments;
  const ranges = deltas + 2 * segments;
  const map = new Map<number, number>();
  for (let s = 0; s < segments; s++) {
    const end = view.getUint16(ends + 2 * s);
    const start = view.getUint16(starts + 2 * s);
    const delta = view.getInt16(deltas + 2 * s);
    const rangeAt = ranges + 2 * s;
    const range = view.getUint16(rangeAt);
    for (let c = start; c <= end && c !== 0xffff; c++) {
      let glyph: number;
      if (range === 0) glyph = (c + delta) & 0xffff;
      else {
        const g = view.getUint16(rangeAt + range + 2 * (c - start));
        glyph = g === 0 ? 0 : (g + delta) & 0xffff;
      }
      if (glyph) map.set(c, glyph);
    }
  }
  return map;
}

export function loadFontMetrics(file: string): FontMetrics {
  const bytes = readFileSync(file);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const unitsPerEm = view.getUint16(table(view, 'head') + 18);
  const metricsCount = view.getUint16(table(view, 'hhea') + 34);
  const hmtx = table(view, 'hmtx');
  const advance = (glyph: number) => view.getUint16(hmtx + 4 * Math.min(glyph, metricsCount - 1));
  const glyphs = glyphMap(view);
  const fallback = advance(glyphs.get(0x6e) ?? 0); // 'n': a typical width for characters the font lacks
  const cache = new Map<number, number>();
  const units = (c: number) => {
    let w = cache.get(c);
    if (w === undefined) {
      const g = glyphs.get(c);
      w = g === undefined ? fallback : advance(g);
      cache.set(c, w);
    }
    return w;
  };
  return {
    width(text, fontSize) {
      let total = 0;
      for (const ch of text) total += units(ch.codePointAt(0) ?? 0);
      return (total / unitsPerEm) * fontSize;
    },
  };
}
