// Bad signing keys, credentials, extra headers and endpoint URLs against the built CLI: one line
// naming the setting (never its value), exit 3, and the bucket untouched. A missing or broken key
// file stops loft before it touches the bucket: the original Loft silently uploaded unsigned paths.
// The secrets used here are registered, so the suite's final check fails if any run printed one.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describeBadInput, type BadInputCase, type BadInputEnv } from '../helpers/bad-input-table.js';
import { registerSecret } from '../helpers/test-secrets.js';

const ENDPOINT_PASSWORD = 'endpoint-pw-3c1f9e0b7a';
const HEADER_VALUE = 'hdr-secret-77a1c4e2d9';
registerSecret('password in an endpoint URL', ENDPOINT_PASSWORD);
registerSecret('extra header value', HEADER_VALUE);

async function withKeyFile(e: BadInputEnv, name: string, text: string | null): Promise<string[]> {
  const path =
    text === null ? join(e.dir, 'files', `${name}-missing.key`) : await e.file(`${name}.key`, text);
  return [
    '-c',
    await e.config(name, { loft: { signing_key_path: JSON.stringify(path) } }),
    '--upload-path',
    e.fresh,
  ];
}

async function withS3(
  e: BadInputEnv,
  name: string,
  s3: Record<string, string | null>,
  extra = '',
): Promise<string[]> {
  return ['-c', await e.config(name, { s3, extra }), '--upload-path', e.fresh];
}

const cases: BadInputCase[] = [
  {
    name: 'missing signing key file',
    code: 3,
    message:
      /^loft: loft\.signing_key_path: cannot read the signing key file .*missing\.key \(no such file\)$/,
    args: (e) => withKeyFile(e, 'key-missing', null),
  },
  {
    name: 'signing key path is a directory (unreadable as a file)',
    code: 3,
    message: /^loft: loft\.signing_key_path: cannot read the signing key file .* \(it is a directory\)$/,
    args: async (e) => {
      await mkdir(join(e.dir, 'files', 'key-dir'), { recursive: true });
      return [
        '-c',
        await e.config('key-dir', {
          loft: { signing_key_path: JSON.stringify(join(e.dir, 'files', 'key-dir')) },
        }),
        '--upload-path',
        e.fresh,
      ];
    },
  },
  {
    name: 'empty signing key file',
    code: 3,
    message: /^loft: loft\.signing_key_path: .*empty\.key is not a usable Nix secret key/,
    args: (e) => withKeyFile(e, 'empty', '\n'),
  },
  {
    name: 'malformed signing key file (not base64)',
    code: 3,
    message: /^loft: loft\.signing_key_path: .*garbage\.key is not a usable Nix secret key/,
    args: (e) => withKeyFile(e, 'garbage', 'name:not-base64!!\n'),
  },
  {
    name: 'signing key of the wrong length (32 bytes, a public key)',
    code: 3,
    message: /is not a usable Nix secret key/,
    args: (e) => withKeyFile(e, 'public', `${e.key.publicKey}\n`),
  },
  {
    name: 'signing key file without a name',
    code: 3,
    message: /is not a usable Nix secret key/,
    args: (e) => withKeyFile(e, 'nameless', `${Buffer.alloc(64, 7).toString('base64')}\n`),
  },
  {
    name: 'signing_key_name does not match the key file',
    code: 3,
    message:
      /^loft: loft\.signing_key_name "other-name-1" does not match the key file's name "loft-bad-secrets-1"/,
    args: async (e) => [
      '-c',
      await e.config('mismatch', { loft: { signing_key_name: '"other-name-1"' } }),
      '--upload-path',
      e.fresh,
    ],
  },
  {
    name: 'signing_key_name without a key file',
    code: 3,
    message: /loft\.signing_key_name: set without loft\.signing_key_path/,
    args: async (e) => [
      '-c',
      await e.config('name-only', { loft: { signing_key_path: null, signing_key_name: '"x-1"' } }),
      '--upload-path',
      e.fresh,
    ],
  },
  {
    name: 'endpoint is not a URL',
    code: 3,
    message: /s3\.endpoint: expected an http:\/\/ or https:\/\/ URL, got "not a url"/,
    args: (e) => withS3(e, 'endpoint-text', { endpoint: '"not a url"' }),
  },
  {
    name: 'endpoint with another scheme',
    code: 3,
    message: /s3\.endpoint: expected an http:\/\/ or https:\/\/ URL, got "ftp:\/\/127\.0\.0\.1:21"/,
    args: (e) => withS3(e, 'endpoint-ftp', { endpoint: '"ftp://127.0.0.1:21"' }),
  },
  {
    name: 'endpoint with a password in it (never echoed)',
    code: 3,
    message: /s3\.endpoint: must not contain a user name or password/,
    args: (e) =>
      withS3(e, 'endpoint-pw', { endpoint: JSON.stringify(`http://u:${ENDPOINT_PASSWORD}@127.0.0.1:9`) }),
  },
  {
    name: 'access_key without secret_key',
    code: 3,
    message: /s3\.secret_key: missing; access_key and secret_key .* go together/,
    args: (e) => withS3(e, 'half-credentials', { secret_key: null }),
  },
  {
    name: 'access_key and access_key_file both set',
    code: 3,
    message: /s3\.access_key and s3\.access_key_file are both set/,
    args: (e) => withS3(e, 'both-access', { access_key_file: '"ak"' }),
  },
  {
    name: 'secret_key_file missing',
    code: 3,
    message: /^loft: s3\.secret_key_file: cannot read .*no-such-secret \(no such file\)$/,
    args: (e) => withS3(e, 'secret-file', { secret_key: null, secret_key_file: '"no-such-secret"' }),
  },
  {
    name: 'secret_key_file empty',
    code: 3,
    message: /^loft: s3\.secret_key_file: the file .*empty-secret is empty$/,
    args: async (e) =>
      withS3(e, 'secret-empty', {
        secret_key: null,
        secret_key_file: JSON.stringify(await e.file('empty-secret', '\n')),
      }),
  },
  {
    name: 'session_token without keys',
    code: 3,
    message: /s3\.session_token: only valid together with access_key and secret_key/,
    args: (e) => withS3(e, 'token-alone', { access_key: null, secret_key: null, session_token: '"tok"' }),
  },
  {
    name: 'extra header value with a line break (header injection; value never echoed)',
    code: 3,
    message:
      /environment variable LOFT_EXTRA_HEADER_X_TOKEN: the value of header x-token contains a line break/,
    args: (e) => ['-c', e.good, '--upload-path', e.fresh],
    env: () => ({ LOFT_EXTRA_HEADER_X_TOKEN: `${HEADER_VALUE}\r\nx-injected: 1` }),
  },
  {
    name: 'extra header that the S3 client must set itself',
    code: 3,
    message: /s3\.extra_headers\.authorization: header authorization is set by the S3 client itself/,
    args: (e) => withS3(e, 'reserved-header', {}, `[s3.extra_headers]\nauthorization = "${HEADER_VALUE}"`),
  },
  {
    name: 'extra header with an invalid name',
    code: 3,
    message: /"bad header" is not a valid HTTP header name/,
    args: (e) => withS3(e, 'header-name', {}, `[s3.extra_headers]\n"bad header" = "${HEADER_VALUE}"`),
  },
  {
    name: 'extra header value that is not a string',
    code: 3,
    message: /s3\.extra_headers\.x-count: expected a string$/,
    args: (e) => withS3(e, 'header-type', {}, '[s3.extra_headers]\nx-count = 5'),
  },
  {
    name: 'extra_headers_file names a missing file',
    code: 3,
    message: /^loft: s3\.extra_headers_file\.x-token: cannot read .*no-such-header \(no such file\)$/,
    args: (e) => withS3(e, 'header-file', {}, '[s3.extra_headers_file]\nx-token = "no-such-header"'),
  },
];

describeBadInput(
  'bad keys, credentials and headers: one line, exit 3, no secret echoed',
  'bad-secrets',
  cases,
);
