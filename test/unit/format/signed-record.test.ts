// The signed records' format (src/format/signed-record.ts): what is written reads back, and what
// a reader must not trust is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FormatError } from '../../../src/errors.js';
import {
  fingerprintDigest,
  parseSignedRecord,
  renderSignedRecord,
  signedRecordKey,
  signedRecordPrefix,
  SIGNED_PREFIX,
} from '../../../src/format/signed-record.js';

const KEY = 'cache-1:7Jlt5lq4UzTt4TbEyS6XrHOuZD3kmDhxRJj6lC3k5uY=';
const H = '0'.repeat(31) + 'a';

test('a record reads back what was written', () => {
  const entries = new Map([
    [H, { etag: 'd41d8cd98f00b204e9800998ecf8427e', fingerprint: fingerprintDigest('1;x') }],
  ]);
  assert.deepEqual(parseSignedRecord(renderSignedRecord(KEY, entries), KEY), entries);
});

test('keys: one folder per public key under .loft/signed/, writer ids checked', () => {
  const prefix = signedRecordPrefix(KEY);
  assert.ok(prefix.startsWith(SIGNED_PREFIX) && prefix.endsWith('/'));
  assert.notEqual(prefix, signedRecordPrefix('cache-2:' + KEY.split(':')[1]!));
  assert.equal(signedRecordKey(KEY, 'abc-12'), `${prefix}abc-12.json`);
  assert.throws(() => signedRecordKey(KEY, '../x'), FormatError);
});

test('fingerprint digests: 22 base64url characters, different for different fingerprints', () => {
  const a = fingerprintDigest('1;/nix/store/a;sha256:x;1;');
  assert.match(a, /^[A-Za-z0-9_-]{22}$/);
  assert.notEqual(a, fingerprintDigest('1;/nix/store/a;sha256:x;2;'));
});

test('refused: not JSON, another version, another key, malformed entries', () => {
  const ok = (narinfos: unknown, key = KEY, v = 1) => JSON.stringify({ v, kind: 'signed', key, narinfos });
  for (const bad of [
    'not json',
    ok({}, KEY, 2),
    ok({}, 'other:AAAA'),
    ok([]),
    ok({ [H]: ['', 'x'] }),
    ok({ [H]: ['etag'] }),
    ok({ 'not-a-hash': ['etag', 'x'] }),
  ]) {
    assert.throws(() => parseSignedRecord(bad, KEY), FormatError, bad);
  }
});
