// The [http] table: a binary cache that takes Nix's own uploads over HTTP (`nix copy --to
// http://HOST/PATH`): nix-stored, nginx or Apache with WebDAV, Artifactory, ncps. Credentials come
// from files only (a URL with a password, or a password in loft.toml, ends up in logs and in the
// world-readable Nix store): `user` + `password_file` (Basic), `token_file` (Bearer) or
// `netrc_file` (what Nix itself reads). Extra headers as in [s3]. The files are located here and
// read by the loader (http-secrets.ts).
import { resolve } from 'node:path';
import { DEFAULTS, LIMITS } from './defaults.js';
import type { HeaderEntry } from './extra-headers.js';
import { readHeaderFiles, readInlineHeaders, type HeaderFileRef } from './s3-section.js';
import type { HttpSettings } from '../storage/settings.js';
import type { TableReader } from './table-reader.js';

export const HTTP_KEYS = [
  'url',
  'user',
  'password_file',
  'token_file',
  'netrc_file',
  'ca_file',
  'client_cert_file',
  'client_key_file',
  'max_attempts',
  'request_timeout_secs',
  'extra_headers',
  'extra_headers_file',
] as const;

/** Where the loader finds the secrets and certificates of [http] (absolute paths). */
export interface HttpFileRefs {
  basic?: { user: string; passwordFile: string };
  tokenFile?: string;
  netrcFile?: string;
  caFile?: string;
  clientCertFile?: string;
  clientKeyFile?: string;
}

export interface HttpSection {
  /** auth, ca and client certificate unset, extraHeaders empty: the loader fills them. */
  http: HttpSettings;
  files: HttpFileRefs;
  inlineHeaders: HeaderEntry[];
  headerFiles: HeaderFileRef[];
}

export function readHttpSection(r: TableReader, baseDir: string): HttpSection {
  const http: HttpSettings = {
    url: readUrl(r),
    extraHeaders: {},
    maxAttempts:
      r.int('max_attempts', LIMITS.maxAttempts.min, LIMITS.maxAttempts.max) ?? DEFAULTS.maxAttempts,
    requestTimeoutSecs:
      r.int('request_timeout_secs', LIMITS.requestTimeoutSecs.min, LIMITS.requestTimeoutSecs.max) ??
      DEFAULTS.requestTimeoutSecs,
  };
  return {
    http,
    files: readFiles(r, baseDir),
    inlineHeaders: readInlineHeaders(r),
    headerFiles: readHeaderFiles(r, baseDir),
  };
}

/** The cache's URL without trailing slashes: Nix strips them too (HttpBinaryCacheStoreConfig). */
function readUrl(r: TableReader): string {
  if (!r.has('url')) {
    r.errors.push(
      `${r.key('url')}: required in [http] (the cache's URL, e.g. "https://cache.example.org/nix")`,
    );
  }
  const value = r.string('url', { nonEmpty: true });
  if (value === undefined) return '';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return r.fail('url', 'an http:// or https:// URL', value.includes('@') ? undefined : value) ?? '';
  }
  if (url.username !== '' || url.password !== '') {
    // Never echo it: the URL carries a credential.
    r.errors.push(
      `${r.key('url')}: must not contain a user name or password; use user with password_file, token_file or netrc_file`,
    );
    return '';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return r.fail('url', 'an http:// or https:// URL', value) ?? '';
  }
  if (url.search !== '' || url.hash !== '') {
    return r.fail('url', 'a URL without a query or fragment (objects go below its path)', value) ?? '';
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

function readFiles(r: TableReader, baseDir: string): HttpFileRefs {
  const path = (name: string) => {
    const value = r.string(name, { nonEmpty: true });
    return value === undefined ? undefined : resolve(baseDir, value);
  };
  const user = r.string('user', { nonEmpty: true });
  const files: HttpFileRefs = {};
  const passwordFile = path('password_file');
  const tokenFile = path('token_file');
  const netrcFile = path('netrc_file');
  const ways = [r.has('user') || r.has('password_file'), r.has('token_file'), r.has('netrc_file')];
  if (ways.filter(Boolean).length > 1) {
    r.errors.push(
      `${r.prefix}: user/password_file, token_file and netrc_file are different ways to log in; keep one`,
    );
  } else if (r.has('user') !== r.has('password_file')) {
    const missing = r.has('user') ? 'password_file' : 'user';
    r.errors.push(`${r.key(missing)}: missing; user and password_file go together (HTTP Basic)`);
  } else if (user !== undefined && passwordFile !== undefined) {
    if (user.includes(':')) r.fail('user', 'a user name without ":" (HTTP Basic cannot carry it)', user);
    else files.basic = { user, passwordFile };
  }
  if (tokenFile !== undefined && files.basic === undefined) files.tokenFile = tokenFile;
  if (netrcFile !== undefined && files.basic === undefined && tokenFile === undefined)
    files.netrcFile = netrcFile;
  const caFile = path('ca_file');
  if (caFile !== undefined) files.caFile = caFile;
  const cert = path('client_cert_file');
  const key = path('client_key_file');
  if (
    (cert === undefined) !== (key === undefined) &&
    (r.has('client_cert_file') || r.has('client_key_file'))
  ) {
    const missing = cert === undefined ? 'client_cert_file' : 'client_key_file';
    r.errors.push(
      `${r.key(missing)}: missing; client_cert_file and client_key_file go together (mutual TLS)`,
    );
  } else if (cert !== undefined && key !== undefined) {
    files.clientCertFile = cert;
    files.clientKeyFile = key;
  }
  return files;
}
