// The [s3] table: the bucket, how to reach it, and where its credentials and extra headers come from.
// Keys follow the original Loft's loft.toml ([s3] bucket, region, endpoint, access_key, secret_key,
// [s3.extra_headers]); the *_file variants, session_token, force_path_style, part_size_mb, max_attempts and
// request_timeout_secs are loft's additions. Secrets are only located here; the loader reads the files.
import { resolve } from 'node:path';
import { DEFAULTS, LIMITS } from './defaults.js';
import type { HeaderEntry } from './extra-headers.js';
import type { S3Settings } from '../storage/settings.js';
import type { TableReader } from './table-reader.js';

export const S3_KEYS = [
  'bucket',
  'region',
  'endpoint',
  'access_key',
  'secret_key',
  'session_token',
  'access_key_file',
  'secret_key_file',
  'session_token_file',
  'force_path_style',
  'part_size_mb',
  'max_attempts',
  'request_timeout_secs',
  'prefix',
  'extra_headers',
  'extra_headers_file',
] as const;

/** A secret written in the file, or the (absolute) path of a file holding it. */
export type SecretSource = { key: string; inline: string } | { key: string; file: string };

export interface CredentialSources {
  accessKey: SecretSource;
  secretKey: SecretSource;
  sessionToken?: SecretSource;
}

export interface HeaderFileRef {
  name: string;
  path: string;
  origin: string;
}

export interface S3Section {
  /** credentials unset and extraHeaders empty: the loader fills them after reading files and env. */
  s3: S3Settings;
  credentials?: CredentialSources;
  inlineHeaders: HeaderEntry[];
  headerFiles: HeaderFileRef[];
}

export function readS3Section(r: TableReader, baseDir: string): S3Section {
  const s3: S3Settings = {
    bucket: readBucket(r),
    region: r.string('region', { nonEmpty: true }) ?? DEFAULTS.region,
    forcePathStyle: r.bool('force_path_style') ?? DEFAULTS.forcePathStyle,
    extraHeaders: {},
    partSizeMb: r.int('part_size_mb', LIMITS.partSizeMb.min, LIMITS.partSizeMb.max) ?? DEFAULTS.partSizeMb,
    maxAttempts:
      r.int('max_attempts', LIMITS.maxAttempts.min, LIMITS.maxAttempts.max) ?? DEFAULTS.maxAttempts,
    requestTimeoutSecs:
      r.int('request_timeout_secs', LIMITS.requestTimeoutSecs.min, LIMITS.requestTimeoutSecs.max) ??
      DEFAULTS.requestTimeoutSecs,
  };
  const endpoint = readEndpoint(r);
  if (endpoint !== undefined) s3.endpoint = endpoint;
  const prefix = readPrefix(r);
  if (prefix !== undefined) s3.prefix = prefix;
  const section: S3Section = { s3, inlineHeaders: readInlineHeaders(r), headerFiles: [] };
  section.headerFiles = readHeaderFiles(r, baseDir);
  const credentials = readCredentials(r, baseDir);
  if (credentials !== undefined) section.credentials = credentials;
  return section;
}

function readBucket(r: TableReader): string {
  if (!r.has('bucket')) {
    r.errors.push(`${r.key('bucket')}: required in [s3] (the name of the bucket that holds the cache)`);
  }
  const bucket = r.string('bucket', { nonEmpty: true }) ?? '';
  if (bucket !== '' && /[\s/\\]/.test(bucket)) {
    r.fail('bucket', 'a bucket name without spaces or slashes', bucket);
  }
  return bucket;
}

/**
 * A folder inside the bucket that holds the cache (several caches in one bucket). Nix then reads
 * it at <endpoint>/<bucket>/<prefix>. Stored with one trailing slash; "" means the bucket root.
 */
function readPrefix(r: TableReader): string | undefined {
  const value = r.string('prefix');
  if (value === undefined) return undefined;
  const trimmed = value.replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return undefined;
  if (/\/\/|(^|\/)\.\.?(\/|$)|[\s\\]/.test(trimmed)) {
    return r.fail('prefix', 'a folder path like "caches/main" (no spaces, "..", "." or "//")', value);
  }
  return `${trimmed}/`;
}

function readEndpoint(r: TableReader): string | undefined {
  const value = r.string('endpoint', { nonEmpty: true });
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return r.fail('endpoint', 'an http:// or https:// URL', value.includes('@') ? undefined : value);
  }
  if (url.username !== '' || url.password !== '') {
    // Never echo it: the URL carries a credential. Credentials belong in access_key/secret_key.
    r.errors.push(
      `${r.key('endpoint')}: must not contain a user name or password; use access_key and secret_key`,
    );
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return r.fail('endpoint', 'an http:// or https:// URL', value);
  }
  return value;
}

/** One secret from `name` or `name_file`, never both. */
function readSecret(r: TableReader, name: string, baseDir: string): SecretSource | undefined {
  const inline = r.string(name, { secret: true, nonEmpty: true });
  const file = r.string(`${name}_file`, { nonEmpty: true });
  if (r.has(name) && r.has(`${name}_file`)) {
    r.errors.push(`${r.key(name)} and ${r.key(`${name}_file`)} are both set; keep one`);
    return undefined;
  }
  if (inline !== undefined) return { key: r.key(name), inline };
  if (file !== undefined) return { key: r.key(`${name}_file`), file: resolve(baseDir, file) };
  return undefined;
}

function readCredentials(r: TableReader, baseDir: string): CredentialSources | undefined {
  const accessKey = readSecret(r, 'access_key', baseDir);
  const secretKey = readSecret(r, 'secret_key', baseDir);
  const sessionToken = readSecret(r, 'session_token', baseDir);
  const given = (name: string) => r.has(name) || r.has(`${name}_file`);
  if (given('access_key') !== given('secret_key')) {
    const missing = given('access_key') ? 'secret_key' : 'access_key';
    r.errors.push(
      `${r.key(missing)}: missing; access_key and secret_key (or their _file variants) go together, ` +
        `or leave both out to use the AWS SDK's default credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE, ...)`,
    );
    return undefined;
  }
  if (given('session_token') && !given('access_key')) {
    r.errors.push(`${r.key('session_token')}: only valid together with access_key and secret_key`);
    return undefined;
  }
  if (accessKey === undefined || secretKey === undefined) return undefined;
  return sessionToken === undefined ? { accessKey, secretKey } : { accessKey, secretKey, sessionToken };
}

export function readInlineHeaders(r: TableReader): HeaderEntry[] {
  const table = r.table('extra_headers', []);
  if (table === undefined) return [];
  const out: HeaderEntry[] = [];
  for (const [name, value] of table.entries()) {
    table.raw(name);
    // Header values may be secrets (the original's README puts Cloudflare Access secrets here).
    if (typeof value !== 'string') table.fail(name, 'a string');
    else out.push({ name, value, origin: table.key(name) });
  }
  return out;
}

export function readHeaderFiles(r: TableReader, baseDir: string): HeaderFileRef[] {
  const table = r.table('extra_headers_file', []);
  if (table === undefined) return [];
  const out: HeaderFileRef[] = [];
  for (const [name] of table.entries()) {
    const path = table.string(name, { nonEmpty: true });
    if (path !== undefined) out.push({ name, path: resolve(baseDir, path), origin: table.key(name) });
  }
  return out;
}
