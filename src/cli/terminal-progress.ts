// A live one-line display for people at a terminal, redrawn on a timer rather than per chunk so a
// fast upload does not spend its time printing. What it counts, so that it never runs ahead of what
// is stored:
// - paths: committed (narinfo written, so Nix can substitute them) out of the paths to upload;
// - bytes: compressed bytes the target has acknowledged, out of an estimate of the compressed total
//   that improves as paths are stored (upload/progress-estimate.ts); "~" marks the total while it
//   is an estimate. The percentage stops at 99 until the run is over;
// - the rate over the last 5 s of acknowledged bytes, and the ETA from that rate.
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
  let timer: NodeJS.Timeout | undefined;
  let finished = false;

  const line = (): string => {
    const figures = estimate.figures();
    rate.add(now(), figures.storedBytes);
    const names = [...inFlight].map((p) => basename(p).slice(33));
    const snapshot = { committed, failed, total, ...figures, inFlight: names, finished };
    return progressLine({ ...snapshot, bytesPerSec: rate.rate() }, stream.columns || 80);
  };
  const draw = () => stream.write(`\r\x1b[2K${line()}`);
  const say = (text: string) => stream.write(`\r\x1b[2K${text}\n`);

  return {
    planned(paths, narBytes) {
      total = paths;
      estimate.planned(paths, narBytes);
      timer = setInterval(draw, REDRAW_MS);
      timer.unref();
    },
    started(path, narSize) {
      inFlight.add(path);
      estimate.started(path, narSize);
    },
    narBytes: (path, n) => estimate.read(path, n),
    fileBytes: (path, n) => estimate.produced(path, n),
    storedBytes: (path, n) => estimate.acknowledged(path, n),
    narStored: (path, fileSize) => estimate.narStored(path, fileSize),
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
      estimate.restarted(path);
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
