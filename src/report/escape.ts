// HTML escaping: every string that reaches the page from an input (word names, paths, options, error
// messages) goes through one of these, so a hostile name cannot become markup.

const entities: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text content and attribute values alike. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => entities[c]);
}

/** A tagged template that escapes every interpolated value (use `raw()` for markup built elsewhere). */
export interface Raw {
  readonly html: string;
}

export const raw = (html: string): Raw => ({ html });

const isRaw = (v: unknown): v is Raw => typeof v === 'object' && v !== null && typeof (v as Raw).html === 'string';

function piece(v: unknown): string {
  if (Array.isArray(v)) return v.map(piece).join('');
  if (isRaw(v)) return v.html;
  if (v === undefined || v === null || v === false) return '';
  return escapeHtml(v);
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Raw {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += piece(values[i]) + strings[i + 1];
  return raw(out);
}
