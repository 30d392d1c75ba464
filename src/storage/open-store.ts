// The one place that turns storage settings into an ObjectStore.
import type { S3Settings, StorageSettings } from './settings.js';
import type { Logger } from '../log.js';
import { LazyObjectStore } from './lazy-object-store.js';
import { LocalObjectStore } from './local-object-store.js';
import type { ObjectStore } from './object-store.js';
import { describeS3Target } from './s3-description.js';

/**
 * An S3 target is opened on first use (see LazyObjectStore): then the AWS SDK loads and one cheap
 * authenticated request checks endpoint, bucket and credentials, so a wrong setting fails with one
 * clear error before any upload starts.
 */
export function openObjectStore(settings: StorageSettings, logger?: Logger): ObjectStore {
  if (settings.kind === 'local') return new LocalObjectStore(settings.path);
  const s3 = settings.s3;
  const description = describeS3Target(s3.bucket, s3.prefix ?? '', s3.endpoint, s3.region);
  return new LazyObjectStore(description, async () => {
    const { S3ObjectStore } = await import('./s3-object-store.js');
    const store = new S3ObjectStore(s3StoreOptions(s3, logger));
    try {
      await store.checkAccess();
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  });
}

/** The S3 store options of `s3` (also what `loft doctor` probes with). */
export function s3StoreOptions(s3: S3Settings, logger: Logger | undefined) {
  return {
    bucket: s3.bucket,
    region: s3.region,
    ...(s3.endpoint !== undefined ? { endpoint: s3.endpoint } : {}),
    forcePathStyle: s3.forcePathStyle,
    ...(s3.credentials !== undefined ? { credentials: s3.credentials } : {}),
    extraHeaders: s3.extraHeaders,
    partSizeBytes: s3.partSizeMb * 1024 * 1024,
    maxAttempts: s3.maxAttempts,
    requestTimeoutMs: s3.requestTimeoutSecs * 1000,
    ...(s3.prefix !== undefined ? { keyPrefix: s3.prefix } : {}),
    ...(logger ? { logger } : {}),
  };
}
