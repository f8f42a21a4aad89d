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
  const eta = (done: number) => {
    if (done === 0) return '?';
    const s = ((Date.now() - started) / 1000 / done) * (total - done);
    return s < 90 ? `${s.toFixed(0)}s` : `${(s / 60).toFixed(1)}m`;
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
  let lastLog = 0;
  return {
    update(done, extra = '') {
      const now = Date.now();
      if (now - lastLog < interval && done < total) return;
      lastLog = now;
      stream.write(`${label}: ${done}/${total} ${extra} eta ${eta(done)}\n`);
    },
    finish(summary) {
      stream.write(`${label}: done in ${((Date.now() - started) / 1000).toFixed(1)}s${summary ? ` (${summary})` : ''}\n`);
    },
  };
}
