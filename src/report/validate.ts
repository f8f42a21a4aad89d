// The report's checks of the metrics and machine fields of results and run folders (data/json-fields.ts
// has the generic ones).
import { type Fields, optNum, optObj, optStr, rate } from '../data/json-fields.ts';
import type { Machine, Metrics } from './job.ts';

/** A rate in [0, 1], or NaN where the writer recorded null (a rate with no clip to measure it on). */
function rateOrNull(f: Fields, key: string): number {
  return f.o[key] === null ? Number.NaN : rate(f, key);
}

export function optMetrics(f: Fields, key: string): Metrics | undefined {
  const m = optObj(f, key);
  return m && { ca: rateOrNull(m, 'ca'), asr: rateOrNull(m, 'asr'), ra: rateOrNull(m, 'ra') };
}

export function optMachine(f: Fields, key: string): Machine | undefined {
  const m = optObj(f, key);
  if (!m) return undefined;
  return {
    hostname: optStr(m, 'hostname'),
    cpus: optNum(m, 'cpus'),
    cpuModel: optStr(m, 'cpuModel'),
    memGb: optNum(m, 'memGb'),
    node: optStr(m, 'node'),
    platform: optStr(m, 'platform'),
  };
}

/** An object of strings (versions); other values are turned into strings. */
export function optStrings(f: Fields, key: string): Record<string, string> | undefined {
  const m = optObj(f, key);
  return m && Object.fromEntries(Object.entries(m.o).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
}
