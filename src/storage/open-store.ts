// The one place that turns storage settings into an ObjectStore.
import type { StorageSettings } from '../config/schema.js';
import type { Logger } from '../log.js';
import { LocalObjectStore } from './local-object-store.js';
import type { ObjectStore } from './object-store.js';

/** The AWS SDK is loaded only for S3 targets: a local-directory run never pays for it. */
export async function openObjectStore(settings: StorageSettings, logger?: Logger): Promise<ObjectStore> {
  if (settings.kind === 'local') return new LocalObjectStore(settings.path);
  const s3 = settings.s3;
  const { S3ObjectStore } = await import('./s3-object-store.js');
  return new S3ObjectStore({
    bucket: s3.bucket,
    region: s3.region,
    ...(s3.endpoint !== undefined ? { endpoint: s3.endpoint } : {}),
    forcePathStyle: s3.forcePathStyle,
    ...(s3.credentials !== undefined ? { credentials: s3.credentials } : {}),
    extraHeaders: s3.extraHeaders,
    partSizeBytes: s3.partSizeMb * 1024 * 1024,
    maxAttempts: s3.maxAttempts,
    ...(s3.prefix !== undefined ? { keyPrefix: s3.prefix } : {}),
    ...(logger ? { logger } : {}),
  });
}

/** The identity the presence cache is tied to: a switch of bucket or directory invalidates it. */
export function storageTarget(settings: StorageSettings): string {
  if (settings.kind === 'local') return `file://${settings.path}`;
  const s3 = settings.s3;
  return `s3://${s3.bucket}/${s3.prefix ?? ''}@${s3.endpoint ?? `aws:${s3.region}`}`;
}
