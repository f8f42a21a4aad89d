// Progress for long work: a bar on a terminal, a plain log line every few seconds elsewhere (logs
// and CI output stay readable).
import cliProgress from 'cli-progress';

export interface Progress {
  /** done of total units; extra is shown after the counts (loss, accuracy, ...) */
  update(done: number, extra?: string): void;
  finish(summary?: string): void;
}

export function createProgress(label: string, total: number, opts: { stream?: NodeJS.WriteStream; intervalMs?: number } = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  const started = Date.now();
  // The rate is measured from the first update on: callers often create the bar after the first unit
  // of work has finished, so the creation time would make the first units look free.
  let first: { at: number; done: number } | null = null;
  const eta = (done: number) => {
    first ??= { at: Date.now(), done };
    if (done <= first.done) return '?';
    return formatSeconds(((Date.now() - first.at) / 1000 / (done - first.done)) * (total - done));
  };
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {value}/{total} {extra} eta {etaText}`, stream, hideCursor: true, clearOnComplete: false },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { extra: '', etaText: '?' });
    return {
      update: (done, extra = '') => bar.update(done, { extra, etaText: eta(done) }),
      finish: (summary) => {
        bar.stop();
        if (summary) stream.write(`${label}: ${summary}\n`);
      },
    };
  }
  const interval = opts.intervalMs ?? 5000;
  // the first line after one interval, so work shorter than that leaves no line at all
  let lastLog = started;
  let logged = false;
  return {
    update(done, extra = '') {
      const now = Date.now();
      if (now - lastLog < interval || done >= total) return; // the end is finish()'s line
      lastLog = now;
      logged = true;
      stream.write(`${label}: ${done}/${total} ${extra} eta ${eta(done)}\n`);
    },
    finish(summary) {
      // Work shorter than the interval (an epoch's steps, a cached split) ends silently unless it has a summary,
      // so a log holds one line per epoch instead of a "done" between every two.
      if (!logged && !summary) return;
      stream.write(`${label}: done in ${((Date.now() - started) / 1000).toFixed(1)}s${summary ? ` (${summary})` : ''}\n`);
    },
  };
}

/** 42s, 3.5m, 1.2h */
export function formatSeconds(s: number): string {
  if (s < 90) return `${s.toFixed(0)}s`;
  return s < 5400 ? `${(s / 60).toFixed(1)}m` : `${(s / 3600).toFixed(1)}h`;
}

/** Time left for `remaining` more epochs at the mean pace of those done so far. */
export function trainingEta(epochSeconds: number[], remaining: number): string {
  if (epochSeconds.length === 0) return '?';
  const mean = epochSeconds.reduce((a, b) => a + b, 0) / epochSeconds.length;
  return formatSeconds(mean * Math.max(0, remaining));
}

/** One bar per key (a split, a stage), created at its first report and finished at done === total. */
export function barsByKey(label: (key: string) => string = (key) => key): (key: string, done: number, total: number) => void {
  const bars = new Map<string, Progress>();
  return (key, done, total) => {
    let bar = bars.get(key);
    if (!bar) {
      bar = createProgress(label(key), total);
      bars.set(key, bar);
    }
    bar.update(done);
    if (done === total) bar.finish();
  };
}

/** Progress of feature extraction: one bar per split. */
export const extractionProgress = () => barsByKey((split) => `features ${split}`);

/** A run's stage ('training the clean model', ...) as one line on stderr. */
export const stageLine = (stage: string): void => {
  process.stderr.write(`${stage}\n`);
};
