// Sorts the requests a recording proxy saw during one upload into S3 operations and per-path
// counts: a path's upload requests are the writes to `<hash>.narinfo` and `nar/<hash>-...`
// (src/format/bucket-layout.ts); presence checks (HEAD of a narinfo, listings) are counted apart.
import type { RecordedRequest } from '../../test/helpers/s3-server.js';

export type S3Operation =
  | 'PutObject'
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'HeadObject'
  | 'GetObject'
  | 'ListObjectsV2'
  | 'other';

export function operationOf(r: RecordedRequest): S3Operation {
  const q = r.query;
  if (r.method === 'PUT') return q.has('partNumber') ? 'UploadPart' : 'PutObject';
  if (r.method === 'POST')
    return q.has('uploads')
      ? 'CreateMultipartUpload'
      : q.has('uploadId')
        ? 'CompleteMultipartUpload'
        : 'other';
  if (r.method === 'DELETE' && q.has('uploadId')) return 'AbortMultipartUpload';
  if (r.method === 'HEAD') return 'HeadObject';
  if (r.method === 'GET') return r.key === '' ? 'ListObjectsV2' : 'GetObject';
  return 'other';
}

export interface RequestStats {
  total: number;
  byOperation: Map<S3Operation, number>;
  /** Presence checks: HEAD of narinfos and ListObjectsV2 pages. */
  presence: number;
  /** Other requests not about one path's upload (nix-cache-info). */
  overhead: number;
  /** Paths whose NAR fits one part: how many, and how many cost exactly 2 requests. */
  smallPaths: number;
  smallWithTwo: number;
  /** The counts seen for small paths, e.g. "2 x 290". */
  smallCounts: Map<number, number>;
  largePaths: number;
  largeRequests: number;
}

export function requestStats(
  requests: readonly RecordedRequest[],
  narSizes: ReadonlyMap<string, number>,
  partSizeBytes: number,
): RequestStats {
  const byOperation = new Map<S3Operation, number>();
  const perHash = new Map<string, number>();
  let overhead = 0;
  let presence = 0;
  for (const r of requests) {
    const op = operationOf(r);
    byOperation.set(op, (byOperation.get(op) ?? 0) + 1);
    const m = /^(?:nar\/)?([0-9a-z]{32})[.-]/.exec(r.key);
    if (op === 'HeadObject' || op === 'ListObjectsV2') presence++;
    else if (m) perHash.set(m[1]!, (perHash.get(m[1]!) ?? 0) + 1);
    else overhead++;
  }
  const stats: RequestStats = {
    total: requests.length,
    byOperation,
    presence,
    overhead,
    smallPaths: 0,
    smallWithTwo: 0,
    smallCounts: new Map(),
    largePaths: 0,
    largeRequests: 0,
  };
  for (const [path, narSize] of narSizes) {
    const n = perHash.get(path.split('/').pop()!.slice(0, 32)) ?? 0;
    // A compressed NAR is at most about its NAR size, so a NAR under one part is one PutObject.
    if (narSize < partSizeBytes) {
      stats.smallPaths++;
      if (n === 2) stats.smallWithTwo++;
      stats.smallCounts.set(n, (stats.smallCounts.get(n) ?? 0) + 1);
    } else {
      stats.largePaths++;
      stats.largeRequests += n;
    }
  }
  return stats;
}

export function formatCounts(m: ReadonlyMap<number | string, number>): string {
  return [...m.entries()].map(([k, v]) => `${k}: ${v}`).join(', ');
}
