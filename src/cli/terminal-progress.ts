// A live one-line display for people at a terminal, redrawn on a timer rather than per chunk so a
// fast upload does not spend its time printing. What it counts, so that it never runs ahead of what
// is stored:
// - paths: committed (narinfo written, so Nix can substitute them) out of the paths to upload;
// - bytes: compressed bytes the target has acknowledged, out of an estimate of the compressed total
//   that improves as paths are stored (upload/progress-estimate.ts); "~" marks the total while it
//   is an estimate. The percentage stops at 99 until the run is over;
// - the percentage also weighs each path by what it costs beyond its bytes (its requests), so a
//   tail of small paths is not shown as 99 % done;
// - the rate over the last 5 s of acknowledged bytes; the ETA from that rate plus the per-path
//   cost of the paths still to commit.
// Nothing is drawn after done(): the summary printed next is the last line.
import { basename } from 'node:path';
import { oneLine } from '../errors.js';
import type { ProgressSink } from '../upload/progress.js';
import { ProgressEstimate } from '../upload/progress-estimate.js';
import { progressLine } from './progress-line.js';
import { RateWindow } from './rate-window.js';

const REDRAW_MS = 200;

export function terminalProgress(stream: NodeJS.WriteStream, now: () => number = Date.now): ProgressSink {
  let total = 0;
  let committed = 0;
  let failed = 0;
  const estimate = new ProgressEstimate();
  const inFlight = new Set<string>();
  const rate = new RateWindow(5000);
  /** The fastest rate seen: what the link carries when bytes, not requests, are the limit. */
  let peakRate = 0;
  let timer: NodeJS.Timeout | undefined;
  let finished = false;

  const line = (): string => {
    const { perPathSeconds, ...figures } = estimate.figures(peakRate);
    rate.add(now(), figures.storedBytes);
    const bytesPerSec = rate.rate();
    peakRate = Math.max(peakRate, bytesPerSec ?? 0);
    const names = [...inFlight].map((p) => basename(p).slice(33));
    const left = figures.totalBytes - figures.storedBytes;
    const etaSeconds =
      bytesPerSec && bytesPerSec > 0 ? left / bytesPerSec + (total - committed) * perPathSeconds : undefined;
    const snapshot = { committed, failed, total, ...figures, inFlight: names, finished };
    return progressLine({ ...snapshot, bytesPerSec, etaSeconds }, stream.columns || 80);
  };
  const draw = () => stream.write(`\r\x1b[2K${line()}`);
  const say = (text: string) => stream.write(`\r\x1b[2K${text}\n`);

  return {
    planned(paths, narBytes, slots) {
      total = paths;
      estimate.planned(paths, narBytes, slots);
      timer = setInterval(draw, REDRAW_MS);
      timer.unref();
    },
    started(path, narSize) {
      inFlight.add(path);
      estimate.started(path, narSize, now());
    },
    narBytes: (path, n) => estimate.read(path, n),
    fileBytes: (path, n) => estimate.produced(path, n),
    storedBytes: (path, n) => estimate.acknowledged(path, n),
    narStored: (path, fileSize) => estimate.narStored(path, fileSize, now()),
    uploaded(r) {
      inFlight.delete(r.path);
      estimate.committed(r.path, r.narSize, r.fileSize);
      committed++;
    },
    failed(path, error) {
      inFlight.delete(path);
      estimate.failed(path);
      failed++;
      say(`failed ${path}: ${oneLine(error)}`);
    },
    retrying(path, attempt, error, delayMs) {
      // The next attempt reads, compresses and stores the NAR from the start again.
      estimate.restarted(path, now());
      say(`retrying ${path} (attempt ${attempt + 1}, in ${Math.round(delayMs / 1000)} s): ${oneLine(error)}`);
    },
    done() {
      if (timer) clearInterval(timer);
      timer = undefined;
      if (total > 0 && !finished) {
        finished = true;
        draw();
        stream.write('\n');
      }
      finished = true;
    },
  };
}
