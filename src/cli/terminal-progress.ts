// A live one-line display for people at a terminal: paths done/total, bytes, rate, current paths.
// Redrawn on a timer rather than per chunk, so a fast upload does not spend its time printing.
import type { ProgressSink } from '../upload/progress.js';
import { basename } from 'node:path';
import { oneLine } from '../errors.js';
import { formatBytes } from './format-size.js';

export function terminalProgress(stream: NodeJS.WriteStream, now: () => number = Date.now): ProgressSink {
  let total = 0;
  let totalBytes = 0;
  let done = 0;
  let bytes = 0;
  const started = now();
  const current = new Set<string>();
  let timer: NodeJS.Timeout | undefined;

  const line = (): string => {
    const secs = Math.max((now() - started) / 1000, 0.001);
    const names = [...current]
      .slice(0, 2)
      .map((p) => basename(p).slice(33))
      .join(', ');
    const more = current.size > 2 ? ` +${current.size - 2}` : '';
    return `[${done}/${total}] ${formatBytes(bytes)}/${formatBytes(totalBytes)} ${formatBytes(bytes / secs)}/s ${names}${more}`;
  };
  const draw = () => stream.write(`\r\x1b[2K${line().slice(0, Math.max((stream.columns || 80) - 1, 20))}`);
  const say = (text: string) => stream.write(`\r\x1b[2K${text}\n`);

  return {
    planned(paths, narBytes) {
      total = paths;
      totalBytes = narBytes;
      timer = setInterval(draw, 200);
      timer.unref();
    },
    started: (path) => current.add(path),
    narBytes: (n) => (bytes += n),
    uploaded(r) {
      current.delete(r.path);
      done++;
    },
    failed(path, error) {
      current.delete(path);
      say(`failed ${path}: ${oneLine(error)}`);
    },
    retrying(path, attempt, error, delayMs) {
      say(`retrying ${path} (attempt ${attempt + 1}, in ${Math.round(delayMs / 1000)} s): ${oneLine(error)}`);
    },
    done() {
      if (timer) clearInterval(timer);
      if (total > 0) {
        draw();
        stream.write('\n');
      }
    },
  };
}
