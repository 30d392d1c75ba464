// The closing summary of an upload run: always printed, whatever the output mode.
import { shownPath } from '../errors.js';
import type { UploadReport } from '../upload/upload-closure.js';
import { formatBytes, formatDuration } from './format-size.js';

export function summaryLines(report: UploadReport, elapsedMs: number, dryRun: boolean): string[] {
  const lines: string[] = [];
  const why = uploadReasons(report);
  for (const info of report.wouldUpload)
    lines.push(`would upload ${info.path} (${formatBytes(info.narSize)} NAR): ${why(info.path)}`);
  for (const s of report.skipped) lines.push(`skipped ${s.path}: ${skipText(s.reason)}`);
  for (const f of report.failed) lines.push(`failed ${shownPath(f.path)}: ${f.message}`);
  const nar = report.uploaded.reduce((n, u) => n + u.narSize, 0);
  const file = report.uploaded.reduce((n, u) => n + u.fileSize, 0);
  const upstream = report.skipped.filter((s) => s.reason === 'upstream-signed').length;
  const drvs = report.skipped.length - upstream;
  const head = dryRun
    ? `dry run: would upload ${paths(report.wouldUpload.length)} (${formatBytes(report.wouldUpload.reduce((n, i) => n + i.narSize, 0))} NAR)`
    : `uploaded ${paths(report.uploaded.length)} (${formatBytes(nar)} NAR, ${formatBytes(file)} compressed)`;
  lines.push(
    `${head}, ${report.alreadyPresent} already present${resignedText(report.resigned.length)}, ` +
      `${report.skipped.length} skipped (${upstream} upstream-signed, ${drvs} derivations), ` +
      `${report.failed.length} failed${vanishedText(report.vanished?.length ?? 0)}, in ${formatDuration(elapsedMs)}`,
  );
  return lines;
}

function skipText(reason: string): string {
  return reason === 'upstream-signed'
    ? 'signed by a key in skip_signed_by_keys (served upstream)'
    : 'a derivation (set loft.upload_derivations or name it to upload it)';
}

function paths(n: number): string {
  return n === 1 ? '1 path' : `${n} paths`;
}

/** Present narinfos that got our signature added in place (a run after a change of signing key). */
function resignedText(n: number): string {
  return n === 0 ? '' : ` (${paths(n)} re-signed with our key, NARs kept)`;
}

function vanishedText(n: number): string {
  return n === 0 ? '' : `, ${paths(n)} garbage-collected during the scan`;
}

/**
 * Why a dry run would upload a path: the cache lacks its narinfo, and it was asked for (named, or
 * listed by --force-scan) or a path that will be uploaded references it.
 */
function uploadReasons(report: UploadReport): (path: string) => string {
  const requested = new Set(report.requested);
  const referrer = new Map<string, string>();
  for (const info of report.wouldUpload) {
    for (const ref of info.references)
      if (ref !== info.path && !referrer.has(ref)) referrer.set(ref, info.path);
  }
  return (path) => {
    if (requested.has(path)) return 'not in the cache; requested';
    const by = referrer.get(path);
    return by === undefined ? 'not in the cache; in the closure' : `not in the cache; referenced by ${by}`;
  };
}
