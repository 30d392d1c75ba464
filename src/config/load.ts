// Builds the Config from the config file, the environment and the secret files it points to.
// Order: read loft.toml (or use the embedded default), validate it (schema.ts, pure), then read S3
// credential files, extra header files and LOFT_EXTRA_HEADER_* variables, then the signing key.
// Nothing is created on disk here (the cache directory and the local database are made by the
// code that uses them).
//
// Without --config, a missing ./loft.toml is not an error: loft then runs with the embedded default,
// a local binary cache in ./loft-cache, so `loft` works out of the box for a first try. With an
// explicit --config the file must exist.
import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { ConfigError } from '../errors.js';
import { DEFAULTS } from './defaults.js';
import { headersFromEnv, mergeExtraHeaders, type HeaderEntry } from './extra-headers.js';
import type { S3Section } from './s3-section.js';
import {
  validateDocument,
  type LoadResult,
  type S3Settings,
  type SchemaContext,
  type ValidatedDocument,
} from './schema.js';
import { readSecretFile, readSigningKeyFile } from './secret-files.js';
import { completeHttp } from './http-secrets.js';
import type { SecretSource } from './s3-section.js';
import type { TomlTable } from './table-reader.js';

export interface LoadOptions {
  /** The config file; relative to `cwd`. Default "loft.toml". */
  path?: string;
  /** True when the user named the file (--config): then a missing file is an error. */
  explicit: boolean;
  env: NodeJS.ProcessEnv;
  debug?: boolean;
  /** The working directory (default process.cwd()); tests pass a temp dir. */
  cwd?: string;
  /**
   * Leave the secret files unread: S3 credentials, extra header files and the signing key. For
   * commands that neither contact the bucket nor sign: `loft --enqueue` (Nix's post-build hook)
   * and `loft --status` (an admin's shell), where the service's credentials (systemd's
   * $CREDENTIALS_DIRECTORY) are out of reach.
   */
  skipSecrets?: boolean;
}

export async function loadConfig(opts: LoadOptions): Promise<LoadResult> {
  const cwd = opts.cwd ?? process.cwd();
  const file = resolve(cwd, opts.path ?? DEFAULTS.configFile);
  const text = await readConfigText(file, opts.explicit);
  const ctx: SchemaContext = {
    baseDir: text === undefined ? cwd : dirname(file),
    cwd,
    env: opts.env,
    homeDir: homedir(),
    debug: opts.debug ?? false,
  };
  if (text !== undefined) ctx.configPath = file;
  const validated = validateDocument(text === undefined ? {} : parseToml(text, file), ctx);
  const { config } = validated;
  const warnings: string[] = [];

  if (opts.skipSecrets) return { config, warnings };
  const envHeaders = headersFromEnv(opts.env);
  if (config.storage.kind === 's3') {
    await completeS3(config.storage.s3, validated, envHeaders);
    if (ctx.configPath !== undefined && hasInlineSecret(validated)) {
      warnings.push(...(await exposedFileWarning(ctx.configPath)));
    }
  } else if (config.storage.kind === 'http') {
    const sources = { files: validated.httpFiles ?? {}, inlineHeaders: validated.inlineHeaders };
    warnings.push(
      ...(await completeHttp(
        config.storage.http,
        { ...sources, headerFiles: validated.headerFiles },
        envHeaders,
      )),
    );
  } else if (envHeaders.length > 0) {
    warnings.push('LOFT_EXTRA_HEADER_* environment variables are ignored: the cache is a local directory');
  }
  if (config.signingKeyPath !== undefined) {
    const { key, warnings: keyWarnings } = await readSigningKeyFile(
      config.signingKeyPath,
      validated.signingKeyName,
    );
    config.signingKey = key;
    warnings.push(...keyWarnings);
  }
  return { config, warnings };
}

/** The file's text; undefined when it is absent and was not asked for by name. */
async function readConfigText(file: string, explicit: boolean): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !explicit) return undefined;
    if (code === 'ENOENT') throw new ConfigError(`config file ${file} not found`);
    const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (code ?? 'read failed');
    throw new ConfigError(`cannot read config file ${file} (${why})`);
  }
}

/** Parses TOML; a syntax error names the file, line and column but never echoes the line (it may hold a secret). */
export function parseToml(text: string, file: string): TomlTable {
  try {
    return parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const what = (err.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
    throw new ConfigError(`${file}:${err.line}:${err.column}: invalid TOML: ${what}`);
  }
}

function hasInlineSecret(v: ValidatedDocument): boolean {
  const c = v.credentials;
  return (
    c !== undefined &&
    [c.accessKey, c.secretKey, c.sessionToken].some((s) => s !== undefined && 'inline' in s)
  );
}

/** A config file holding credentials should not be readable by others (the original's NixOS
 * module put its file in the world-readable Nix store); *_file keys avoid that. */
async function exposedFileWarning(file: string): Promise<string[]> {
  const mode = (await stat(file)).mode;
  if ((mode & 0o077) === 0) return [];
  const octal = (mode & 0o777).toString(8).padStart(4, '0');
  return [
    `${file} holds S3 credentials and is accessible by group or others (mode ${octal}); ` +
      'run chmod 600 on it or use access_key_file/secret_key_file',
  ];
}

async function completeS3(s3: S3Settings, v: ValidatedDocument, envHeaders: HeaderEntry[]): Promise<void> {
  if (v.credentials !== undefined) s3.credentials = await readCredentials(v.credentials);
  const files: HeaderEntry[] = [];
  for (const ref of v.headerFiles) {
    files.push({ name: ref.name, value: await readSecretFile(ref.origin, ref.path), origin: ref.origin });
  }
  s3.extraHeaders = mergeExtraHeaders({ inline: v.inlineHeaders, files, env: envHeaders });
}

async function readCredentials(
  sources: NonNullable<S3Section['credentials']>,
): Promise<NonNullable<S3Settings['credentials']>> {
  const credentials: NonNullable<S3Settings['credentials']> = {
    accessKeyId: await readSecret(sources.accessKey),
    secretAccessKey: await readSecret(sources.secretKey),
  };
  if (sources.sessionToken !== undefined) credentials.sessionToken = await readSecret(sources.sessionToken);
  return credentials;
}

async function readSecret(source: SecretSource): Promise<string> {
  if ('inline' in source) return source.inline.trim();
  return readSecretFile(source.key, source.file);
}
