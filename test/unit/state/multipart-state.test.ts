// The table of unfinished multipart uploads: begun, given an id, parts added as acknowledged,
// forgotten when the upload ends; rows of another target or another upload id are never mixed in.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { MultipartState } from '../../../src/state/multipart-state.js';

const dir = mkdtempSync(join(tmpdir(), 'loft-mp-state-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const origin = { narHash: 'sha256:abc', producer: 'zstd 1.5.7 level 3', narKey: 'nar/h-abc-id.nar.zst' };
const part = (n: number) => ({ partNumber: n, etag: `"e${n}"`, size: 5, md5: `m${n}` });

describe('MultipartState', () => {
  test('records an upload and its parts in order, across a reopen (a new process)', () => {
    const path = join(dir, 'a.db');
    const s = MultipartState.open(path, { target: 's3://b' });
    s.begin('h1', origin, 111, 1000);
    assert.equal(s.find('h1')?.uploadId, undefined, 'no id before S3 gave one');
    s.started('h1', 'U1', 5);
    s.stored('h1', 'U1', part(2));
    s.stored('h1', 'U1', part(1));
    s.close();
    const again = MultipartState.open(path, { target: 's3://b' });
    const u = again.find('h1');
    assert.deepEqual(u, {
      hashPart: 'h1',
      ...origin,
      uploadId: 'U1',
      partSize: 5,
      ownerPid: 111,
      startedAt: 1000,
      parts: [part(1), part(2)],
    });
    again.claim('h1', 222);
    assert.equal(again.find('h1')?.ownerPid, 222);
    again.forget('h1');
    assert.equal(again.find('h1'), undefined);
    again.close();
  });

  test('a part of another upload id is not recorded; a new id drops the old parts; begin starts over', () => {
    const s = MultipartState.open(join(dir, 'b.db'), { target: 's3://b' });
    s.begin('h1', origin, 1);
    s.started('h1', 'U1', 5);
    s.stored('h1', 'U2', part(1));
    assert.deepEqual(s.find('h1')?.parts, []);
    s.stored('h1', 'U1', part(1));
    s.started('h1', 'U2', 5);
    assert.deepEqual(s.find('h1')?.parts, [], 'parts of U1 are gone once U2 started');
    s.stored('h1', 'U2', part(1));
    s.begin('h1', { ...origin, narKey: 'nar/other' }, 1);
    assert.deepEqual(s.find('h1')?.parts, []);
    assert.equal(s.find('h1')?.narKey, 'nar/other');
    s.close();
  });

  test('rows of another target are not offered', () => {
    const path = join(dir, 'c.db');
    const a = MultipartState.open(path, { target: 's3://a' });
    a.begin('h1', origin, 1);
    a.close();
    const b = MultipartState.open(path, { target: 's3://b' });
    assert.equal(b.find('h1'), undefined);
    assert.deepEqual(b.all(), []);
    b.close();
  });
});
