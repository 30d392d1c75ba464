// Shared set-up for tests that run the built CLI against a real cache: config files, reading the
// bucket back, and having the machine's Nix substitute from it over HTTP or file://.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseNarInfo, type NarInfo } from '../../src/format/narinfo.js';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import { deleteStorePaths } from './fixtures.js';
import { nixBin } from './nix-env.js';
import { storeOptionsFor, type TestS3 } from './s3-server.js';

export interface ConfigOptions {
  dir: string;
  s3?: TestS3;
  localPath?: string;
  compression?: 'zstd' | 'xz' | 'none';
  signingKeyPath?: string;
  skipSignedByKeys?: string[];
  extraS3?: string;
  extraLoft?: string;
  /** Leave access_key/secret_key out, so the AWS SDK's chain (environment) supplies them. */
  credentialsFromEnv?: boolean;
}

/** Writes a loft.toml for a test and returns its path. */
export async function writeConfig(o: ConfigOptions): Promise<string> {
  const lines: string[] = [];
  if (o.s3) {
    lines.push(
      '[s3]',
      `bucket = "${o.s3.bucket}"`,
      `region = "${o.s3.region}"`,
      `endpoint = "${o.s3.endpoint}"`,
      o.credentialsFromEnv ? '' : `access_key = "${o.s3.accessKeyId}"`,
      o.credentialsFromEnv ? '' : `secret_key = "${o.s3.secretAccessKey}"`,
      'part_size_mb = 5',
      o.s3.keyPrefix ? `prefix = "${o.s3.keyPrefix}"` : '',
      o.extraS3 ?? '',
    );
  }
  if (o.localPath) lines.push('[local]', `path = "${o.localPath}"`);
  lines.push(
    '[loft]',
    `local_cache_path = "${join(o.dir, 'cache.db')}"`,
    `compression = "${o.compression ?? 'zstd'}"`,
    'upload_threads = 4',
    `skip_signed_by_keys = ${JSON.stringify(o.skipSignedByKeys ?? [])}`,
    o.signingKeyPath ? `signing_key_path = "${o.signingKeyPath}"` : '',
    o.extraLoft ?? '',
  );
  const path = join(o.dir, 'loft.toml');
  await writeFile(path, lines.join('\n') + '\n', { mode: 0o600 });
  return path;
}

/** The cache URL Nix reads: path-style on the test server, public (anonymous GET) in s3rver. */
export function httpCacheUrl(s3: TestS3): string {
  return `${s3.endpoint}/${s3.bucket}${s3.keyPrefix ? `/${s3.keyPrefix.replace(/\/$/, '')}` : ''}`;
}

export async function bucketObjects(s3: TestS3): Promise<Map<string, number>> {
  const store = new S3ObjectStore(storeOptionsFor(s3));
  const out = new Map<string, number>();
  for await (const o of store.list('')) out.set(o.key, o.size);
  await store.close();
  return out;
}

export async function bucketNarInfo(s3: TestS3, hashPart: string): Promise<NarInfo | undefined> {
  const store = new S3ObjectStore(storeOptionsFor(s3));
  const body = await store.get(`${hashPart}.narinfo`);
  await store.close();
  return body ? parseNarInfo(body.toString('utf8')) : undefined;
}

/** Realises `paths` from `cacheUrl` only, with `publicKey` as the only trusted key. */
export async function substitute(paths: string[], cacheUrl: string, publicKey?: string): Promise<void> {
  const trust = publicKey
    ? ['--option', 'trusted-public-keys', publicKey, '--option', 'require-sigs', 'true']
    : ['--option', 'require-sigs', 'false'];
  await nixBin(['nix-store', '--realise', '--option', 'substituters', cacheUrl, ...trust, '--', ...paths]);
}

/** `nix store verify` of the closures: contents and at least one signature by `publicKey`. */
export async function verifyClosure(paths: string[], publicKey: string): Promise<void> {
  await nixBin([
    'nix',
    'store',
    'verify',
    '--sigs-needed',
    '1',
    '--trusted-public-keys',
    publicKey,
    '-r',
    '--',
    ...paths,
  ]);
}

/** The closure of `paths` as Nix sees it. */
export async function closureOf(paths: string[]): Promise<string[]> {
  const { stdout } = await nixBin(['nix-store', '--query', '--requisites', '--', ...paths]);
  return stdout.split('\n').filter((l) => l.length > 0);
}

export function hashPartOfPath(p: string): string {
  return p.split('/').pop()!.slice(0, 32);
}

/**
 * Deletes `closure` (and `alsoDelete`, e.g. other fixture paths that keep members alive) from the
 * local store, and fails if any member survived: a path still there would not be substituted, and
 * the test would prove nothing about the cache.
 */
export async function deleteLocally(closure: string[], alsoDelete: string[] = []): Promise<void> {
  await deleteStorePaths([...alsoDelete, ...closure]);
  const left = closure.filter((p) => existsSync(p));
  if (left.length > 0) throw new Error(`could not delete from the local store: ${left.join(' ')}`);
}
