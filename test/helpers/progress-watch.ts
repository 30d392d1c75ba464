// Watches the built CLI's progress line over time, as a person at a terminal would: the CLI runs on
// a pseudo-terminal (util-linux `script`), every redraw is stamped with the moment it arrived, and
// the count of narinfos in s3rver's data directory is sampled meanwhile, so a test can hold each
// line against the time that had passed and against what was stored at that moment.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { LOFT_MAIN } from './loft-cli.js';
import { nixEnv } from './nix-env.js';
import { recordChildOutput } from './test-secrets.js';

/** One redraw of the progress line, parsed. */
export interface ProgressSample {
  /** ms since the CLI was started. */
  at: number;
  text: string;
  committed: number;
  total: number;
  percent: number;
}

export interface WatchedRun {
  code: number | null;
  /** ms from start to the summary line ("uploaded N paths ..."); undefined if none came. */
  summaryAt: number | undefined;
  samples: ProgressSample[];
  /** Every segment shown, in order (progress lines, messages, the summary). */
  segments: Array<{ at: number; text: string }>;
  /** [ms since start, narinfos stored], sampled every `pollMs`. */
  stored: Array<[number, number]>;
  raw: string;
}

const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const SEPARATOR = /\r\x1b\[2K|\r?\n/; // eslint-disable-line no-control-regex -- what a redraw writes
const LINE = /^\[(\d+)\/(\d+)\] (\d+)%/;

/** How many narinfos s3rver holds in `bucketDir` (keys at the top level, no prefix). */
export function narinfosIn(bucketDir: string): number {
  try {
    return readdirSync(bucketDir).filter((f) => f.endsWith('.narinfo._S3rver_object')).length;
  } catch {
    return 0;
  }
}

/**
 * Runs `main` (default: the built CLI) with `args` on a terminal `columns` wide. `storedNow` is
 * sampled every `pollMs` while it runs.
 */
export async function watchProgress(
  args: string[],
  storedNow: () => number,
  o: { columns?: number; pollMs?: number; main?: string } = {},
): Promise<WatchedRun> {
  const cmd = [process.execPath, o.main ?? LOFT_MAIN, ...args].map(sh).join(' ');
  const start = performance.now();
  const since = () => Math.round(performance.now() - start);
  const child = spawn('script', ['-qec', `stty cols ${o.columns ?? 200} rows 24; exec ${cmd}`, '/dev/null'], {
    env: nixEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stored: Array<[number, number]> = [[0, storedNow()]];
  const poll = setInterval(() => stored.push([since(), storedNow()]), o.pollMs ?? 50);
  const segments: Array<{ at: number; text: string }> = [];
  const chunks: Buffer[] = [];
  let open = false; // the last segment may continue in the next chunk
  child.stdout.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    const at = since();
    const pieces = chunk.toString('utf8').split(SEPARATOR);
    pieces.forEach((piece, i) => {
      if (i === 0 && open && segments.length > 0) segments[segments.length - 1]!.text += piece;
      else segments.push({ at, text: piece });
    });
    open = pieces[pieces.length - 1] !== '';
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearInterval(poll);
  stored.push([since(), storedNow()]);
  const raw = Buffer.concat(chunks);
  recordChildOutput('progress-watch', raw, Buffer.alloc(0));
  const shown = segments.map((s) => ({ at: s.at, text: s.text.trimEnd() })).filter((s) => s.text !== '');
  const samples = shown.flatMap((s) => {
    const m = LINE.exec(s.text);
    return m ? [{ at: s.at, text: s.text, committed: +m[1]!, total: +m[2]!, percent: +m[3]! }] : [];
  });
  const summaryAt = shown.find((s) => /^uploaded \d+ paths/.test(s.text))?.at;
  return { code, summaryAt, samples, segments: shown, stored, raw: raw.toString('utf8') };
}

export interface Lead {
  /** Percent shown minus the percent of the run's time passed. */
  points: number;
  sample: ProgressSample | undefined;
}

/**
 * How far the line ran ahead of the share of the run's time that had passed, at most (`ahead`),
 * and how far it lagged behind it, at most (`behind`, negative points).
 */
export function pointsAhead(run: WatchedRun): { ahead: Lead; behind: Lead } {
  const ahead: Lead = { points: -Infinity, sample: undefined };
  const behind: Lead = { points: Infinity, sample: undefined };
  const end = run.summaryAt;
  if (end === undefined) return { ahead, behind };
  for (const s of run.samples) {
    const points = s.percent - (100 * s.at) / end;
    if (points > ahead.points) Object.assign(ahead, { points, sample: s });
    if (points < behind.points) Object.assign(behind, { points, sample: s });
  }
  return { ahead, behind };
}

/** One line for a report: the worst lead and lag, with the lines that showed them. */
export function describeLead(run: WatchedRun): string {
  const { ahead, behind } = pointsAhead(run);
  const at = (l: Lead) =>
    `${l.points.toFixed(1)} points ("${l.sample?.text.slice(0, 60)}" at ${l.sample?.at} ms)`;
  return `of ${run.summaryAt} ms: at most ${at(ahead)} ahead; at most ${at(behind)} behind`;
}

/** The narinfos stored by the first sample taken at or after `at` (they only ever grow). */
export function storedBy(run: WatchedRun, at: number): number {
  return (run.stored.find(([t]) => t >= at) ?? run.stored[run.stored.length - 1]!)[1];
}

/** The s3rver directory that holds `bucket`'s objects. */
export function bucketDirOf(s3rverDir: string, bucket: string): string {
  return join(s3rverDir, bucket);
}
