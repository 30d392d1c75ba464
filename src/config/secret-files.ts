// Reading the files that hold secrets: S3 credentials (*_file), extra header values
// ([s3.extra_headers_file]) and the Nix signing key. Messages name the setting and the path and say
// why the read failed; they never contain a byte of the file. Values are trimmed because files
// written by `echo`, sops-nix, agenix or systemd credentials usually end in a newline (the original
// Loft did not trim its key file, so a trailing newline broke signing after the NAR was uploaded).
import { readFile, stat } from 'node:fs/promises';
import { ConfigError, FormatError, KeyError, oneLine } from '../errors.js';
import { parseSecretKey, type SecretKey } from '../format/signing-key.js';

/** The trimmed contents of a secret file; ConfigError naming `key` and `path` when unusable. */
export async function readSecretFile(key: string, path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${key}: cannot read ${path} (${reason(err)})`);
  }
  const value = text.trim();
  if (value === '') throw new ConfigError(`${key}: the file ${path} is empty`);
  return value;
}

export interface SigningKeyFile {
  key: SecretKey;
  warnings: string[];
}

/**
 * The Nix secret key in `path` (the `NAME:BASE64` line `nix key generate-secret` writes). A file
 * that cannot be read or parsed is an error: loft never falls back to uploading unsigned paths.
 */
export async function readSigningKeyFile(path: string, expectedName?: string): Promise<SigningKeyFile> {
  let text: string;
  let mode: number;
  try {
    text = await readFile(path, 'utf8');
    mode = (await stat(path)).mode;
  } catch (err) {
    throw new ConfigError(`loft.signing_key_path: cannot read the signing key file ${path} (${reason(err)})`);
  }
  let key: SecretKey;
  try {
    key = parseSecretKey(text.trim());
  } catch (err) {
    // The parser's messages never quote key text (src/format/signing-key.ts); anything else is dropped.
    const detail = err instanceof KeyError || err instanceof FormatError ? `: ${oneLine(err)}` : '';
    throw new KeyError(
      `loft.signing_key_path: ${path} is not a usable Nix secret key${detail} (expected one line ` +
        'NAME:BASE64 as written by `nix key generate-secret --key-name NAME`)',
    );
  }
  if (expectedName !== undefined && expectedName !== key.name) {
    // Nix verifies a Sig against the trusted key of the same name, and the name is part of the key
    // file: a different configured name would produce signatures no client can check.
    throw new ConfigError(
      `loft.signing_key_name ${JSON.stringify(expectedName)} does not match the key file's name ` +
        `${JSON.stringify(key.name)}; the Sig name comes from the key file (remove signing_key_name or fix it)`,
    );
  }
  const warning = exposedKeyWarning(`signing key file ${path}`, mode);
  return { key, warnings: warning === undefined ? [] : [warning] };
}

/**
 * The warning for a private key file (the signing key, the TLS client key) that group or others
 * can read, or undefined. A warning, not an error: like ssh's, the check cannot see ACLs or who
 * the group is, and refusing would break set-ups that share a key with a service group on purpose.
 */
export function exposedKeyWarning(subject: string, mode: number): string | undefined {
  if ((mode & 0o077) === 0) return undefined;
  const octal = (mode & 0o777).toString(8).padStart(4, '0');
  return `${subject} is accessible by group or others (mode ${octal}); run chmod 600 on it`;
}

function reason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    case undefined:
      return 'read failed';
    default:
      return code;
  }
}
