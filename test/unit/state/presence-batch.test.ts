// Batched presence rows against a real SQLite file: rows land together at the next turn of the
// event loop (one transaction for all the commits of that turn), flush() writes at once, and a
// failed background write surfaces at flush() instead of crashing the process.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { PresenceBatch } from '../../../src/state/presence-batch.js';
import { PresenceCache } from '../../../src/state/presence.js';

const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';
let dir = '';
let n = 0;

function hashPart(): string {
  return [...randomBytes(32)].map((b) => NIX32[b % 32]).join('');
}

function open(): { cache: PresenceCache; path: string } {
  const path = join(dir, `batch-${++n}.sqlite`);
  return { cache: PresenceCache.open(path, { target: 'memory://batch' }), path };
}

/** Rows another connection sees: what is committed. */
function rowsSeenElsewhere(path: string): number {
  const other = new Database(path, { readonly: true });
  try {
    return other.prepare('SELECT count(*) FROM presence').pluck().get() as number;
  } finally {
    other.close();
  }
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'loft-presence-batch-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('PresenceBatch', () => {
  test('rows added in one turn are written together at the next turn, with what they say', async () => {
    const { cache, path } = open();
    const batch = new PresenceBatch(cache);
    const hashes = Array.from({ length: 50 }, hashPart);
    for (const h of hashes) batch.add({ hashPart: h, narSize: 7, signer: 'k:abc' });
    assert.equal(rowsSeenElsewhere(path), 0, 'nothing is written in the same turn');
    await nextTurn();
    assert.equal(rowsSeenElsewhere(path), 50);
    assert.deepEqual(cache.filterMissing(hashes), []);
    assert.deepEqual(cache.notSignedBy(hashes, 'k:abc'), []);
    cache.close();
  });

  test('flush() writes at once and leaves nothing for the next turn', async () => {
    const { cache, path } = open();
    const batch = new PresenceBatch(cache);
    batch.add({ hashPart: hashPart() });
    batch.flush();
    assert.equal(rowsSeenElsewhere(path), 1);
    await nextTurn();
    assert.equal(rowsSeenElsewhere(path), 1);
    cache.close();
  });

  test('a background write that fails is thrown by flush(), not left uncaught', async () => {
    const { cache } = open();
    const batch = new PresenceBatch(cache);
    cache.close(); // every later write fails
    batch.add({ hashPart: hashPart() });
    await nextTurn();
    assert.throws(() => batch.flush());
  });
});
