// The identity of a cache's storage: the presence database is tied to it (a switch of bucket or
// directory empties the database), and the default database file is named after it. No secrets.
import { createHash } from 'node:crypto';
import type { StorageSettings } from '../storage/settings.js';

export function storageTarget(settings: StorageSettings): string {
  if (settings.kind === 'local') return `file://${settings.path}`;
  if (settings.kind === 'http') return settings.http.url;
  const s3 = settings.s3;
  return `s3://${s3.bucket}/${s3.prefix ?? ''}@${s3.endpoint ?? `aws:${s3.region}`}`;
}

/** A short file-name-safe digest of the target, for `cache-<digest>.db`. */
export function targetDigest(target: string): string {
  return createHash('sha256').update(target).digest('hex').slice(0, 16);
}
