// The pure validation of a parsed loft.toml (plus the environment) into the Config of config.ts.
// No I/O here: secrets in files, extra header files and the signing key are located here and read
// by load.ts.
//
// The file format stays compatible with the original Loft's loft.toml: the tables [s3] and [loft]
// with the same keys and meanings. loft adds [local] (a directory binary cache Nix reads as
// file://DIR) and a few keys, each documented in loft.toml.example. Unknown keys are errors: a typo
// such as `signing_key_pth` would otherwise change what gets published (unsigned narinfos) with only
// a warning to show for it. Every key of the original Loft is known, so its files load unchanged.
import { isAbsolute, join, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import type { Config, StorageSettings } from './config.js';
import { DEFAULTS } from './defaults.js';
import type { HeaderEntry } from './extra-headers.js';
import { LOFT_KEYS, readLoftSection } from './loft-section.js';
import { s3BufferedPerUpload } from '../storage/body-source.js';
import { ZSTD_FRAME_BYTES } from '../upload/compute-pool.js';
import { readS3Section, S3_KEYS, type CredentialSources, type HeaderFileRef } from './s3-section.js';
import { HTTP_KEYS, readHttpSection, type HttpFileRefs } from './http-section.js';
import { storageTarget, targetDigest } from './storage-target.js';
import { TableReader, type TomlTable } from './table-reader.js';

export { COMPRESSION_LEVELS, DEFAULTS, LIMITS } from './defaults.js';
export { describeConfig } from './describe-config.js';
export { LOFT_KEYS } from './loft-section.js';
export { HTTP_KEYS } from './http-section.js';
export { S3_KEYS, type CredentialSources, type HeaderFileRef, type SecretSource } from './s3-section.js';

export type {
  Compression,
  Config,
  LoadResult,
  PruneSettings,
  S3Settings,
  StorageSettings,
} from './config.js';

export const ROOT_KEYS = ['s3', 'local', 'http', 'loft'] as const;
export const LOCAL_KEYS = ['path'] as const;

export interface SchemaContext {
  /** Absolute path of the config file, when there is one (named in every error message). */
  configPath?: string;
  /** Relative paths in the file resolve against this: the config file's directory, else cwd. */
  baseDir: string;
  /** The working directory: the embedded default cache lives in <cwd>/loft-cache. */
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Home directory, for the default local_cache_path when XDG_STATE_HOME is unset. */
  homeDir: string;
  debug: boolean;
}

/** A Config whose secrets, extra headers and signing key still have to be read by the loader. */
export interface ValidatedDocument {
  config: Config;
  credentials?: CredentialSources;
  inlineHeaders: HeaderEntry[];
  headerFiles: HeaderFileRef[];
  /** [http]'s credential, CA and client certificate files, for the loader. */
  httpFiles?: HttpFileRefs;
  signingKeyName?: string;
}

/** The most messages put into one ConfigError line. */
const MAX_ERRORS_SHOWN = 3;

/** Validates a parsed document. Throws one ConfigError listing the first few problems. */
export function validateDocument(doc: TomlTable, ctx: SchemaContext): ValidatedDocument {
  const errors: string[] = [];
  const root = new TableReader(doc, '', ROOT_KEYS, errors);
  const s3Table = root.table('s3', S3_KEYS);
  const localTable = root.table('local', LOCAL_KEYS);
  const httpTable = root.table('http', HTTP_KEYS);
  const loftTable = root.table('loft', LOFT_KEYS) ?? new TableReader({}, 'loft', LOFT_KEYS, errors);
  const loft = readLoftSection(loftTable, ctx.baseDir);
  const s3 = s3Table === undefined ? undefined : readS3Section(s3Table, ctx.baseDir);
  const http = httpTable === undefined ? undefined : readHttpSection(httpTable, ctx.baseDir);
  const localPath = localTable?.string('path', { nonEmpty: true });
  if (localTable !== undefined && !localTable.has('path')) {
    errors.push('local.path: required in [local] (the directory of the local binary cache)');
  }
  const targets = [s3Table && '[s3]', localTable && '[local]', httpTable && '[http]'].filter(Boolean);
  if (targets.length > 1) {
    const which = targets.length === 2 ? 'both' : 'all';
    errors.push(
      `${targets.join(' and ')} are ${which} present; a cache lives in one place, keep one of them`,
    );
  }
  if (ctx.configPath !== undefined && targets.length === 0) {
    // Only the built-in default (no config file at all) may fall back to ./loft-cache: a config
    // file without a cache is a mistake (a misplaced table header), and uploading into a directory
    // where the user did not look would hide it.
    errors.push(
      'no [s3], [local] or [http] table: say where the cache is ([s3] bucket = ..., [local] path = ..., or [http] url = ...)',
    );
  }
  if (s3Table === undefined && loft.settings.extras.logCompression !== 'none') {
    // A directory keeps no Content-Encoding, nor does nginx's WebDAV: Nix would get the compressed
    // bytes as the log. S3 keeps the header with the object.
    errors.push(
      'loft.log_compression: needs [s3] (a [local] directory or a WebDAV server keeps no Content-Encoding); remove it or set "none"',
    );
  }
  if (s3 !== undefined)
    fitBudgetToParts(loft.settings, s3.s3.partSizeMb, loftTable.has('memory_budget'), errors);
  const storeDir = storeDirFromEnv(ctx.env, errors);
  for (const key of [root, s3Table, localTable, httpTable, loftTable].flatMap(
    (t) => t?.unknownKeys() ?? [],
  )) {
    errors.push(`unknown key ${key}: fix its name or remove it (loft.toml.example lists every key)`);
  }
  if (errors.length > 0) throw configError(errors, ctx.configPath);
  let storage: StorageSettings;
  if (s3 !== undefined) storage = { kind: 's3', s3: s3.s3 };
  else if (http !== undefined) storage = { kind: 'http', http: http.http };
  else if (localPath !== undefined) storage = { kind: 'local', path: resolve(ctx.baseDir, localPath) };
  else storage = { kind: 'local', path: join(ctx.cwd, DEFAULTS.localDir) };

  const config: Config = { storeDir, storage, ...loft.settings, debug: ctx.debug };
  if (config.localCachePath === '') {
    config.localCachePath = defaultLocalCachePath(ctx.env, ctx.homeDir, storageTarget(storage));
  }
  if (ctx.configPath !== undefined) config.configPath = ctx.configPath;
  const out: ValidatedDocument = {
    config,
    inlineHeaders: s3?.inlineHeaders ?? http?.inlineHeaders ?? [],
    headerFiles: s3?.headerFiles ?? http?.headerFiles ?? [],
  };
  if (http !== undefined) out.httpFiles = http.files;
  if (s3?.credentials !== undefined) out.credentials = s3.credentials;
  if (loft.signingKeyName !== undefined) out.signingKeyName = loft.signingKeyName;
  return out;
}

/**
 * The budget must hold one zstd frame and one S3 upload's parts (s3BufferedPerUpload), or a large
 * NAR could never start. A budget the file sets is checked; the default grows to fit large parts.
 */
function fitBudgetToParts(
  settings: { memoryBudgetBytes: number },
  partSizeMb: number,
  explicit: boolean,
  errors: string[],
): void {
  const part = partSizeMb * 2 ** 20;
  // A body of many parts, but not so large that partSizeFor would grow them.
  const need = ZSTD_FRAME_BYTES + s3BufferedPerUpload(part, undefined, part * 64);
  if (settings.memoryBudgetBytes >= need) return;
  if (!explicit) settings.memoryBudgetBytes = need;
  else
    errors.push(
      `loft.memory_budget: ${settings.memoryBudgetBytes / 2 ** 20}MiB cannot hold one S3 upload's parts of ` +
        `${partSizeMb} MiB and a zstd frame; set at least "${need / 2 ** 20}MiB" or lower s3.part_size_mb`,
    );
}

/** NIX_STORE_DIR, as Nix itself reads it, else /nix/store. */
export function storeDirFromEnv(env: NodeJS.ProcessEnv, errors: string[] = []): string {
  const value = env['NIX_STORE_DIR'];
  if (value === undefined || value === '') return DEFAULTS.storeDir;
  if (!isAbsolute(value)) {
    errors.push(
      `environment variable NIX_STORE_DIR: expected an absolute path, got ${JSON.stringify(value)}`,
    );
    return DEFAULTS.storeDir;
  }
  return value.length > 1 ? value.replace(/\/+$/, '') : value;
}

/**
 * $XDG_STATE_HOME/loft/cache-<digest>.db, else ~/.local/state/loft/cache-<digest>.db (XDG Base
 * Directory spec), one file per target: with a single file, every `./loft-cache` directory and every
 * bucket shared it, and each switch of target emptied it for all the others.
 */
export function defaultLocalCachePath(env: NodeJS.ProcessEnv, homeDir: string, target: string): string {
  const file = `cache-${targetDigest(target)}.db`;
  const state = env['XDG_STATE_HOME'];
  // The XDG spec says relative values are invalid and must be ignored.
  if (state !== undefined && isAbsolute(state)) return join(state, 'loft', file);
  const home = env['HOME'] !== undefined && isAbsolute(env['HOME']) ? env['HOME'] : homeDir;
  return join(home, '.local', 'state', 'loft', file);
}

function configError(errors: string[], configPath: string | undefined): ConfigError {
  const shown = errors.slice(0, MAX_ERRORS_SHOWN).join('; ');
  const more = errors.length > MAX_ERRORS_SHOWN ? `; and ${errors.length - MAX_ERRORS_SHOWN} more` : '';
  const prefix = configPath === undefined ? '' : `${configPath}: `;
  return new ConfigError(`${prefix}${shown}${more}`);
}
