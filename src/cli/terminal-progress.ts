// A live one-line display for people at a terminal, redrawn on a timer rather than per chunk so a
// fast upload does not spend its time printing. What it counts, so that it never runs ahead:
// - paths: committed (narinfo written, so Nix can substitute them) out of the paths to upload;
// - bytes: the NAR size of every committed path, plus for each path in flight the NAR bytes it has
//   read and passed on to compression and the object store, capped at its size. That part runs
//   ahead of what the store has acknowledged by at most what the store buffers of one upload
//   (ObjectStore.bufferedPerUpload), so the percentage stops at 99 until the last path is
//   committed;
// - the rate over the last 5 s of that count, and the ETA from that rate.
// Nothing is drawn after done(): the summary printed next is the last line.
import { basename } from 'node:path';
import { oneLine } from '../errors.js';
import type { ProgressSink } from '../upload/progress.js';
import { progressLine } from './progress-line.js';
import { RateWindow } from './rate-window.js';

const REDRAW_MS = 200;

export function terminalProgress(stream: NodeJS.WriteStream, now: () => number = Date.now): ProgressSink {
  let total = 0;
  let totalBytes = 0;
  let committed = 0;
  let failed = 0;
  let committedBytes = 0;
  /** Path -> [NAR bytes read so far, NAR size]: only paths in flight. */
  const inFlight = new Map<string, { read: number; size: number }>();
  const rate = new RateWindow(5000);
  let timer: NodeJS.Timeout | undefined;
  let finished = false;

  const stored = () => {
    let n = committedBytes;
    for (const p of inFlight.values()) n += Math.min(p.read, p.size);
    return n;
  };
  const line = (): string => {
    const bytes = stored();
    rate.add(now(), bytes);
    const names = [...inFlight.keys()].map((p) => basename(p).slice(33));
    const snapshot = { committed, failed, total, storedBytes: bytes, totalBytes, inFlight: names, finished };
    return progressLine({ ...snapshot, bytesPerSec: rate.rate() }, stream.columns || 80);
  };
  const draw = () => stream.write(`\r\x1b[2K${line()}`);
  const say = (text: string) => stream.write(`\r\x1b[2K${text}\n`);

  return {
    planned(paths, narBytes) {
      total = paths;
      totalBytes = narBytes;
      timer = setInterval(draw, REDRAW_MS);
      timer.unref();
    },
    started: (path, narSize) => inFlight.set(path, { read: 0, size: narSize }),
    narBytes(path, n) {
      const p = inFlight.get(path);
      if (p) p.read += n;
    },
    uploaded(r) {
      inFlight.delete(r.path);
      committed++;
      committedBytes += r.narSize;
    },
    failed(path, error) {
      inFlight.delete(path);
      failed++;
      say(`failed ${path}: ${oneLine(error)}`);
    },
    retrying(path, attempt, error, delayMs) {
      // The next attempt reads the NAR from the start again.
      const p = inFlight.get(path);
      if (p) p.read = 0;
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
