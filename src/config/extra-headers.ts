// Extra HTTP headers sent with every S3 request (for example Cloudflare Access service tokens in
// front of a bucket). Three sources, as in the original Loft, merged by case-insensitive name:
//   [s3.extra_headers]        inline in the TOML file (non-secret values)
//   [s3.extra_headers_file]   header name -> file whose trimmed contents are the value (secrets,
//                             systemd credentials, sops-nix/agenix)
//   LOFT_EXTRA_HEADER_<NAME>  environment; "_" in NAME becomes "-" (CF_ACCESS_CLIENT_ID ->
//                             cf-access-client-id), the convention of the original's NixOS wrapper
// Precedence: environment > file > inline. Header values are secrets: no message here shows one.
// Pure: the loader reads the files and passes their contents in.
import { ConfigError } from '../errors.js';

export const ENV_HEADER_PREFIX = 'LOFT_EXTRA_HEADER_';

export interface HeaderEntry {
  /** The header name as written (any case). */
  name: string;
  value: string;
  /** Where it came from, for messages: a dotted TOML key or an environment variable name. */
  origin: string;
}

export interface HeaderLayers {
  inline: HeaderEntry[];
  files: HeaderEntry[];
  env: HeaderEntry[];
}

/** RFC 9110 token characters. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

// Headers the SDK computes or signs itself; overriding them breaks requests or SigV4 signatures.
const RESERVED = new Set([
  'host',
  'authorization',
  'content-length',
  'content-md5',
  'transfer-encoding',
  'connection',
  'expect',
  'x-amz-date',
  'x-amz-content-sha256',
  'x-amz-security-token',
  'x-amz-decoded-content-length',
]);

export function isValidHeaderName(name: string): boolean {
  return TOKEN.test(name);
}

/** LOFT_EXTRA_HEADER_* variables as entries (names lower-cased, "_" -> "-"). */
export function headersFromEnv(env: NodeJS.ProcessEnv): HeaderEntry[] {
  const out: HeaderEntry[] = [];
  for (const [variable, value] of Object.entries(env)) {
    if (!variable.startsWith(ENV_HEADER_PREFIX) || value === undefined) continue;
    const name = variable.slice(ENV_HEADER_PREFIX.length).toLowerCase().replace(/_/g, '-');
    out.push({ name, value, origin: `environment variable ${variable}` });
  }
  return out.sort((a, b) => (a.origin < b.origin ? -1 : 1));
}

/**
 * The merged headers, names lower-case. Throws ConfigError for an invalid or reserved name, a value
 * with a line break or control character, an empty value, or two spellings of one name in one source.
 */
export function mergeExtraHeaders(layers: HeaderLayers): Record<string, string> {
  const merged: Record<string, string> = {};
  // Later layers win: inline, then files, then the environment.
  for (const layer of [layers.inline, layers.files, layers.env]) {
    const seen = new Map<string, string>();
    for (const entry of layer) {
      const name = checkEntry(entry);
      const earlier = seen.get(name);
      if (earlier !== undefined) {
        throw new ConfigError(
          `${entry.origin}: header ${name} is also set by ${earlier}; header names are case-insensitive, keep one`,
        );
      }
      seen.set(name, entry.origin);
      merged[name] = entry.value.trim();
    }
  }
  return merged;
}

/** The lower-case name of a valid entry; throws naming the header (never its value). */
function checkEntry(entry: HeaderEntry): string {
  if (!isValidHeaderName(entry.name)) {
    throw new ConfigError(
      `${entry.origin}: ${JSON.stringify(entry.name)} is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_\`|~ only)`,
    );
  }
  const name = entry.name.toLowerCase();
  if (RESERVED.has(name)) {
    throw new ConfigError(
      `${entry.origin}: header ${name} is set by the S3 client itself and cannot be overridden`,
    );
  }
  const value = entry.value.trim();
  // CR/LF would split the request (header injection); other control characters are invalid too.
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value)) {
    throw new ConfigError(
      `${entry.origin}: the value of header ${name} contains a line break or control character; it must be one line`,
    );
  }
  if (value === '') {
    throw new ConfigError(`${entry.origin}: the value of header ${name} is empty`);
  }
  return name;
}
