// The one place that turns storage settings into an ObjectStore.
import type { HttpSettings, S3Settings, StorageSettings } from './settings.js';
import type { Logger } from '../log.js';
import { s3BufferedPerUpload } from './body-source.js';
import { LazyObjectStore, type OpenedStore } from './lazy-object-store.js';
import { LocalObjectStore } from './local-object-store.js';
import type { ObjectStore } from './object-store.js';
import { describeS3Target } from './s3-description.js';

/**
 * An S3 or HTTP target is opened on first use (see LazyObjectStore): then the AWS SDK loads and one cheap
 * authenticated request checks endpoint, bucket and credentials, so a wrong setting fails with one
 * clear error before any upload starts. To S3 the first reads go out beside that request, not after
 * it (lazy-object-store.ts).
 */
export function openObjectStore(settings: StorageSettings, logger?: Logger): ObjectStore {
  if (settings.kind === 'local') return new LocalObjectStore(settings.path);
  if (settings.kind === 'http') return openHttpStore(settings.http, logger);
  const s3 = settings.s3;
  const description = describeS3Target(s3.bucket, s3.prefix ?? '', s3.endpoint, s3.region);
  const options = s3StoreOptions(s3, logger);
  const buffered = (sizeHint: number) => s3BufferedPerUpload(options.partSizeBytes, undefined, sizeHint);
  return new LazyObjectStore(description, open, buffered);

  async function open(): Promise<OpenedStore> {
    const { S3ObjectStore } = await import('./s3-object-store.js');
    const store = new S3ObjectStore(options);
    return { store, access: store.checkAccess() };
  }
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

/**
 * An HTTP cache is opened on first use too, with one read of nix-cache-info as its access check
 * (http-object-store.ts): a run the presence cache answers sends no request.
 */
function openHttpStore(http: HttpSettings, logger: Logger | undefined): ObjectStore {
  return new LazyObjectStore(http.url, async (): Promise<ObjectStore> => {
    const { HttpObjectStore } = await import('./http-object-store.js');
    const store = new HttpObjectStore({
      url: http.url,
      ...(http.auth !== undefined ? { auth: http.auth } : {}),
      extraHeaders: http.extraHeaders,
      ...(http.ca !== undefined ? { ca: http.ca } : {}),
      ...(http.clientCert !== undefined && http.clientKey !== undefined
        ? { clientCert: http.clientCert, clientKey: http.clientKey }
        : {}),
      maxAttempts: http.maxAttempts,
      requestTimeoutMs: http.requestTimeoutSecs * 1000,
      ...(logger ? { logger } : {}),
    });
    // Checked before any other request, unlike S3: an HTTP cache's answers to a wrong password
    // differ by server (nix-stored answers 500, which reads beside the check would retry), and
    // the round trip saved matters over a wide-area link to S3, not to a cache on the LAN.
    try {
      await store.checkAccess();
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  });
}
