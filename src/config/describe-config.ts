// A Config for a debug log line: every setting a person needs to see what loft will do, and nothing
// that could be a secret (no credentials, no header values, no key material; the signing key's
// name and path are not secret, and the name is what Nix's trusted-public-keys refers to).
import type { Config } from './config.js';
import { formatListenAddress } from './metrics-listen.js';

export function describeConfig(c: Config): Record<string, unknown> {
  return {
    configPath: c.configPath ?? '(embedded default)',
    storeDir: c.storeDir,
    storage: describeStorage(c),
    uploadThreads: c.uploadThreads,
    scanOnStartup: c.scanOnStartup,
    populateCacheOnStartup: c.populateCacheOnStartup,
    localCachePath: c.localCachePath,
    compression: c.compression,
    compressionLevel: c.compressionLevel,
    useDiskForLargeNars: c.useDiskForLargeNars,
    largeNarThresholdMb: c.largeNarThresholdMb,
    signing:
      c.signingKey === undefined ? 'off' : { keyName: c.signingKey.name, keyPath: c.signingKeyPath ?? null },
    skipSignedByKeys: [...c.skipSignedByKeys],
    uploadDerivations: c.uploadDerivations,
    priority: c.priority,
    prune: { ...c.prune },
    extras: { ...c.extras },
    memoryBudgetBytes: c.memoryBudgetBytes,
    freshStartAfterUploads: c.freshStartAfterUploads,
    metricsListen: c.metricsListen ? formatListenAddress(c.metricsListen) : 'off',
    debug: c.debug,
  };
}

function describeStorage(c: Config): Record<string, unknown> {
  if (c.storage.kind === 'local') return { kind: 'local', path: c.storage.path };
  if (c.storage.kind === 'http') {
    const http = c.storage.http;
    return {
      kind: 'http',
      url: http.url,
      auth:
        http.auth === undefined
          ? 'none'
          : http.auth.kind === 'basic'
            ? `basic (user ${http.auth.user})`
            : 'bearer',
      ca: http.ca === undefined ? 'system' : 'ca_file',
      clientCertificate: http.clientCert !== undefined,
      maxAttempts: http.maxAttempts,
      requestTimeoutSecs: http.requestTimeoutSecs,
      extraHeaders: Object.fromEntries(Object.keys(http.extraHeaders).map((name) => [name, '[redacted]'])),
    };
  }
  const s3 = c.storage.s3;
  return {
    kind: 's3',
    bucket: s3.bucket,
    region: s3.region,
    endpoint: s3.endpoint ?? '(AWS default)',
    prefix: s3.prefix ?? '',
    forcePathStyle: s3.forcePathStyle,
    partSizeMb: s3.partSizeMb,
    maxAttempts: s3.maxAttempts,
    requestTimeoutSecs: s3.requestTimeoutSecs,
    credentialSource:
      s3.credentials === undefined
        ? 'AWS SDK default chain'
        : s3.credentials.sessionToken === undefined
          ? 'config (access key + secret key)'
          : 'config (access key + secret key + session token)',
    extraHeaders: Object.fromEntries(Object.keys(s3.extraHeaders).map((name) => [name, '[redacted]'])),
  };
}
