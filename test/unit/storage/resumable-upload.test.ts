// confirmedParts: a recorded part is skipped on resume only when the server lists it with the same
// number, ETag and size, and (where the ETag is a plain MD5) the recorded MD5.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { confirmedParts } from '../../../src/storage/resumable-upload.js';

const md5 = 'c4ca4238a0b923820dcc509a6f75849b';
const rec = (n: number, etag: string, size = 5, m = md5) => ({ partNumber: n, etag, size, md5: m });

describe('confirmedParts', () => {
  test('keeps parts the server lists alike, drops the rest', () => {
    const recorded = [rec(1, `"${md5}"`), rec(2, '"x-2"'), rec(3, '"x-3"'), rec(4, '"x-4"')];
    const listed = [
      { partNumber: 1, etag: `"${md5}"`, size: 5 },
      { partNumber: 2, etag: '"x-2"', size: 5 },
      { partNumber: 3, etag: '"other"', size: 5 },
      // 4 is missing on the server
    ];
    assert.deepEqual(
      confirmedParts(recorded, listed).map((p) => p.partNumber),
      [1, 2],
    );
  });

  test('a size that differs, or a plain-MD5 ETag that is not the recorded MD5, is sent again', () => {
    const other = 'eccbc87e4b5ce2fe28308fd9f2a7baf3';
    assert.deepEqual(confirmedParts([rec(1, '"e"')], [{ partNumber: 1, etag: '"e"', size: 6 }]), []);
    assert.deepEqual(
      confirmedParts([rec(1, `"${other}"`)], [{ partNumber: 1, etag: `"${other}"`, size: 5 }]),
      [],
    );
  });
});
