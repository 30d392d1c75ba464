// The live progress line of an upload on a terminal, as a pure function of a snapshot and the
// terminal's width, so it can be tested at any width with a fake clock. It never reaches the last
// column: a line that fills the width makes some terminals wrap, and the next redraw (`\r`) then
// starts on the wrong row.
import { formatBytes } from './format-size.js';

export interface ProgressSnapshot {
  /** Paths whose narinfo is written (what Nix can substitute). */
  committed: number;
  failed: number;
  total: number;
  /** Compressed bytes the target has acknowledged; see terminal-progress.ts. */
  storedBytes: number;
  /** The compressed total, estimated until `exact`. */
  totalBytes: number;
  exact: boolean;
  /** Bytes per second over the last few seconds; undefined until there is enough to tell. */
  bytesPerSec: number | undefined;
  /** The share of the work done, 0 to 1, when it is more than bytes (default: the bytes' share). */
  fraction?: number;
  /** Seconds left, when known better than from the bytes left and the rate. */
  etaSeconds?: number | undefined;
  /** Names (without the hash) of the paths being uploaded. */
  inFlight: readonly string[];
  /** The run is over: the percentage may show 100. */
  finished: boolean;
}

export function progressLine(s: ProgressSnapshot, columns: number): string {
  const width = Math.max(columns - 1, 10);
  const segments = [
    `[${s.committed}/${s.total}]`,
    percent(s),
    `${formatBytes(s.storedBytes)}/${s.exact ? '' : '~'}${formatBytes(s.totalBytes)}`,
    s.bytesPerSec === undefined ? '' : `${formatBytes(Math.round(s.bytesPerSec))}/s`,
    s.finished ? '' : `ETA ${eta(s)}`,
    s.failed > 0 ? `${s.failed} failed` : '',
  ].filter((x) => x !== '');
  // Segments are in order of importance: whatever does not fit is dropped from the end.
  let line = '';
  for (const seg of segments) {
    const next = line === '' ? seg : `${line} ${seg}`;
    if (next.length > width) break;
    line = next;
  }
  if (line === '') return (segments[0] ?? '').slice(0, width);
  return withNames(line, s.inFlight, width);
}

/** Appends as many in-flight names as fit, then "+N" for the others. */
function withNames(line: string, names: readonly string[], width: number): string {
  for (let shown = names.length; shown >= 0 && names.length > 0; shown--) {
    const rest = names.length - shown;
    const listed = names.slice(0, shown).join(', ');
    const text = `${line} | ${listed}${rest > 0 ? `${shown > 0 ? ' ' : ''}+${rest}` : ''}`;
    if (text.length <= width) return text;
  }
  return line;
}

/** Whole percent, rounded down: 100 only once the run is over and nothing failed. */
function percent(s: ProgressSnapshot): string {
  if (s.totalBytes <= 0 && s.fraction === undefined) return s.finished && s.failed === 0 ? '100%' : '0%';
  const pct = Math.floor(100 * (s.fraction ?? s.storedBytes / s.totalBytes));
  const done = s.finished && s.failed === 0 && s.committed === s.total;
  return `${done ? 100 : Math.min(pct, 99)}%`;
}

function eta(s: ProgressSnapshot): string {
  const left = s.totalBytes - s.storedBytes;
  if (s.bytesPerSec === undefined || s.bytesPerSec <= 0) return '--';
  const secs = Math.ceil(Math.max(s.etaSeconds ?? left / s.bytesPerSec, 0));
  const h = Math.floor(secs / 3600);
  const m = Math.floor((secs % 3600) / 60);
  const ss = String(secs % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
