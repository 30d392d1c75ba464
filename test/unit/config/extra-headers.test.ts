import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../src/errors.js';
import {
  headersFromEnv,
  isValidHeaderName,
  mergeExtraHeaders,
  type HeaderEntry,
} from '../../../src/config/extra-headers.js';

const inline = (name: string, value: string): HeaderEntry => ({
  name,
  value,
  origin: `s3.extra_headers.${name}`,
});
const file = (name: string, value: string): HeaderEntry => ({
  name,
  value,
  origin: `s3.extra_headers_file.${name}`,
});

describe('headersFromEnv', () => {
  test('LOFT_EXTRA_HEADER_* becomes a lower-case name with hyphens; other variables are ignored', () => {
    const entries = headersFromEnv({
      LOFT_EXTRA_HEADER_CF_ACCESS_CLIENT_ID: 'id',
      LOFT_EXTRA_HEADER_X_TRACE: 't',
      LOFT_EXTRA_HEADERS_X: 'not ours',
      AWS_ACCESS_KEY_ID: 'ak',
    });
    assert.deepEqual(
      entries.map((e) => [e.name, e.value, e.origin]),
      [
        ['cf-access-client-id', 'id', 'environment variable LOFT_EXTRA_HEADER_CF_ACCESS_CLIENT_ID'],
        ['x-trace', 't', 'environment variable LOFT_EXTRA_HEADER_X_TRACE'],
      ],
    );
  });
});

describe('mergeExtraHeaders', () => {
  test('precedence env > file > inline, case-insensitive, names lower-cased, values trimmed', () => {
    const merged = mergeExtraHeaders({
      inline: [
        inline('CF-Access-Client-Id', 'inline-id'),
        inline('X-Only-Inline', 'a'),
        inline('X-Both', 'inline'),
      ],
      files: [file('cf-access-client-id', 'file-id\n'), file('X-BOTH', 'file')],
      env: headersFromEnv({ LOFT_EXTRA_HEADER_CF_ACCESS_CLIENT_ID: ' env-id ' }),
    });
    assert.deepEqual(merged, {
      'cf-access-client-id': 'env-id',
      'x-only-inline': 'a',
      'x-both': 'file',
    });
  });

  test('nothing anywhere gives an empty record', () => {
    assert.deepEqual(mergeExtraHeaders({ inline: [], files: [], env: [] }), {});
  });

  const SECRET = 'V4LUE-SECRET-9';
  const bad: Array<[string, HeaderEntry[], RegExp]> = [
    ['space in name', [inline('X Bad', SECRET)], /"X Bad" is not a valid HTTP header name/],
    ['colon in name', [inline('X:Bad', SECRET)], /is not a valid HTTP header name/],
    [
      'empty name',
      [{ name: '', value: SECRET, origin: 'environment variable LOFT_EXTRA_HEADER_' }],
      /LOFT_EXTRA_HEADER_: "" is not a valid/,
    ],
    [
      'CR LF in value',
      [inline('X-A', `${SECRET}\r\nX-Injected: 1`)],
      /s3.extra_headers.X-A: the value of header x-a contains a line break/,
    ],
    ['NUL in value', [inline('X-A', `a\0${SECRET}`)], /control character/],
    ['empty value', [file('X-A', ' \n')], /s3.extra_headers_file.X-A: the value of header x-a is empty/],
    [
      'reserved name',
      [inline('Authorization', SECRET)],
      /header authorization is set by the S3 client itself/,
    ],
    ['reserved x-amz-date', [inline('X-Amz-Date', SECRET)], /header x-amz-date is set by the S3 client/],
    [
      'same name twice in one source',
      [inline('X-A', SECRET), inline('x-a', SECRET)],
      /header x-a is also set by s3.extra_headers.X-A/,
    ],
  ];
  for (const [label, entries, pattern] of bad) {
    test(`rejects: ${label}, naming the header but not the value`, () => {
      assert.throws(
        () => mergeExtraHeaders({ inline: entries, files: [], env: [] }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.match(err.message, pattern);
          assert.ok(!err.message.includes(SECRET), err.message);
          assert.ok(!err.message.includes('\n'));
          return true;
        },
      );
    });
  }

  test('isValidHeaderName follows RFC 9110 tokens', () => {
    for (const ok of ['X-A', 'cf-access-client-id', "a!#$%&'*+-.^_`|~9"])
      assert.ok(isValidHeaderName(ok), ok);
    for (const no of ['', 'a b', 'a:b', 'ä', 'a\r', '(x)']) assert.ok(!isValidHeaderName(no), no);
  });
});
