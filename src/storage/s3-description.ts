// How an S3 target is named in logs and messages, without loading the AWS SDK (the lazy store must
// name its target before the SDK is loaded). Never includes credentials or query strings.

/** The endpoint for messages: its origin only, so userinfo or a query can never leak. */
export function describeEndpoint(endpoint: string | undefined, region: string): string {
  if (endpoint === undefined) return `AWS S3 (${region})`;
  try {
    const url = new URL(endpoint);
    return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
  } catch {
    return 'the configured endpoint (not a valid URL)';
  }
}

/** e.g. "s3://nix-cache/caches/main at https://s3.example.org". */
export function describeS3Target(
  bucket: string,
  prefix: string,
  endpoint: string | undefined,
  region: string,
): string {
  return `s3://${bucket}${prefix ? `/${prefix.replace(/\/$/, '')}` : ''} at ${describeEndpoint(endpoint, region)}`;
}
