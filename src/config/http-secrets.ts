// Reading the files [http] names: the password, token or netrc file, the CA and the client
// certificate and key. Messages name the setting and the path, never a byte of the file.
//
// How `password_file` is read: byte for byte, except that ONE line break at the very end ("\n" or
// "\r\n", what `echo` and most editors add) is not part of the password. Spaces and any other
// bytes are. nix-stored reads its own password file byte for byte, newline included: give it a file
// written with `printf '%s'` (or give loft the same bytes plus one newline).
import { readFile, stat } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { ConfigError } from '../errors.js';
import type { HeaderEntry } from './extra-headers.js';
import { mergeExtraHeaders } from './extra-headers.js';
import { exposedKeyWarning, readSecretFile } from './secret-files.js';
import type { HeaderFileRef } from './s3-section.js';
import type { HttpFileRefs } from './http-section.js';
import { netrcLoginFor } from './http-netrc.js';
import type { HttpSettings } from '../storage/settings.js';

export interface HttpSources {
  files: HttpFileRefs;
  inlineHeaders: HeaderEntry[];
  headerFiles: HeaderFileRef[];
}

/** Fills auth, CA, client certificate and extra headers of `http`; returns warnings. */
export async function completeHttp(
  http: HttpSettings,
  sources: HttpSources,
  envHeaders: HeaderEntry[],
): Promise<string[]> {
  const { files } = sources;
  const warnings: string[] = [];
  if (files.basic !== undefined) {
    const password = await readPasswordFile('http.password_file', files.basic.passwordFile);
    http.auth = { kind: 'basic', user: files.basic.user, password };
  } else if (files.tokenFile !== undefined) {
    http.auth = { kind: 'bearer', token: await readSecretFile('http.token_file', files.tokenFile) };
  } else if (files.netrcFile !== undefined) {
    const host = new URL(http.url).hostname;
    const text = await readText('http.netrc_file', files.netrcFile);
    const login = netrcLoginFor(text, host);
    if (login === undefined) {
      warnings.push(
        `http.netrc_file ${files.netrcFile} has no entry for ${host}: requests go without credentials`,
      );
    } else {
      http.auth = { kind: 'basic', user: login.login, password: login.password };
    }
  }
  if (files.caFile !== undefined) http.ca = await readPem('http.ca_file', files.caFile, /CERTIFICATE/);
  if (files.clientCertFile !== undefined && files.clientKeyFile !== undefined) {
    http.clientCert = await readPem('http.client_cert_file', files.clientCertFile, /CERTIFICATE/);
    http.clientKey = await readPem('http.client_key_file', files.clientKeyFile, /PRIVATE KEY/);
    checkClientPair(http.clientCert, http.clientKey, files.clientCertFile, files.clientKeyFile);
    // A private key, like the signing key: the same warning when group or others can read it.
    const { mode } = await stat(files.clientKeyFile);
    const warning = exposedKeyWarning(`http.client_key_file ${files.clientKeyFile}`, mode);
    if (warning !== undefined) warnings.push(warning);
  }
  const headerFiles: HeaderEntry[] = [];
  for (const ref of sources.headerFiles) {
    headerFiles.push({
      name: ref.name,
      value: await readSecretFile(ref.origin, ref.path),
      origin: ref.origin,
    });
  }
  http.extraHeaders = mergeExtraHeaders({
    inline: sources.inlineHeaders,
    files: headerFiles,
    env: envHeaders,
  });
  return warnings;
}

/** The password: the file's bytes without one final line break (see the top of this file). */
export async function readPasswordFile(key: string, path: string): Promise<string> {
  const text = await readText(key, path);
  const password = text.replace(/\r?\n$/, '');
  if (password === '') throw new ConfigError(`${key}: the file ${path} is empty`);
  // eslint-disable-next-line no-control-regex
  if (/[\x00\n\r]/.test(password)) {
    throw new ConfigError(`${key}: the file ${path} holds more than one line; the password is one line`);
  }
  return password;
}

async function readText(key: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? 'read failed');
    throw new ConfigError(`${key}: cannot read ${path} (${why})`);
  }
}

/**
 * Refuses a certificate and key Node could not use, at load time with one line, rather than with
 * the first request as a network error: an encrypted key (loft has no passphrase setting) or a key
 * that is not the certificate's. Only OpenSSL's code is shown, never its text or the file's bytes.
 */
function checkClientPair(cert: string, key: string, certPath: string, keyPath: string): void {
  if (/ENCRYPTED/.test(key)) {
    throw new ConfigError(
      `http.client_key_file: ${keyPath} is encrypted; loft reads an unencrypted key ` +
        '(openssl pkey -in KEY -out NEW_KEY writes one; keep it chmod 600)',
    );
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH') {
      throw new ConfigError(
        `http.client_key_file: ${keyPath} is not the key of the certificate in ${certPath}`,
      );
    }
    throw new ConfigError(
      `http.client_cert_file, client_key_file: ${certPath} and ${keyPath} are not a usable ` +
        `certificate and key (${typeof code === 'string' ? code : 'unreadable'})`,
    );
  }
}

async function readPem(key: string, path: string, label: RegExp): Promise<string> {
  const text = await readText(key, path);
  const begin = text.match(/-----BEGIN ([A-Z0-9 ]+)-----/);
  if (begin === null || !label.test(begin[1] ?? '')) {
    throw new ConfigError(`${key}: ${path} is not a PEM file of the expected kind (${label.source})`);
  }
  return text;
}
