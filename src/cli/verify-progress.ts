// The live line `loft verify` draws on a terminal: narinfos checked out of all, problems so far,
// and NAR bytes read (with --check-contents). Redrawn on a timer, as the upload's line is, and
// erased when the walk ends so the problem lines and the summary stand alone.
import type { ScanProgress } from '../verify/bucket-scan.js';
import { formatBytes } from './format-size.js';

const REDRAW_MS = 200;

export function verifyProgress(stream: NodeJS.WriteStream): {
  update: (p: ScanProgress) => void;
  done: () => void;
} {
  let last: ScanProgress | undefined;
  const draw = () => {
    if (!last) return;
    const bytes = last.bytesRead > 0 ? `, ${formatBytes(last.bytesRead)} of NARs read` : '';
    const text = `[${last.done}/${last.total}] narinfos checked, ${last.problems} problems${bytes}`;
    stream.write(`\r\x1b[2K${text.slice(0, Math.max(10, (stream.columns || 80) - 1))}`);
  };
  const timer = setInterval(draw, REDRAW_MS);
  timer.unref();
  return {
    update: (p) => {
      last = p;
    },
    done: () => {
      clearInterval(timer);
      if (last) stream.write('\r\x1b[2K');
    },
  };
}
