// The prune lease over in-memory stores: one that honours conditional creates, one that ignores
// them (as Garage 2.0 and s3rver do), and one that has none.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../src/log.js';
import { LEASE_KEY, LEASE_TTL_MS, takeLease } from '../../../src/prune/lease.js';
import type { PutOptions } from '../../../src/storage/object-store.js';
import { MemoryObjectStore } from '../../helpers/memory-object-store.js';

/** Honours If-None-Match: a create of an existing key is refused. */
class ConditionalStore extends MemoryObjectStore {
  async createExclusive(key: string, body: Buffer | string, opts: PutOptions): Promise<boolean> {
    if (this.objects.has(key)) return false;
    await this.putBytes(key, body, opts);
    return true;
  }
}
/** Accepts the header and overwrites anyway. */
class IgnoringStore extends MemoryObjectStore {
  async createExclusive(key: string, body: Buffer | string, opts: PutOptions): Promise<boolean> {
    await this.putBytes(key, body, opts);
    return true;
  }
}

const log = silentLogger();

describe('takeLease', () => {
  test('where conditional creates work: one holder, the next is told who holds it', async () => {
    const store = new ConditionalStore();
    const first = await takeLease(store, 'host-a', Date.now(), log);
    assert.equal(first.kind, 'held');
    assert.deepEqual(await takeLease(store, 'host-b', Date.now(), log), { kind: 'busy', holder: 'host-a' });
    if (first.kind === 'held') await first.release();
    assert.equal(store.objects.has(LEASE_KEY), false);
    assert.equal((await takeLease(store, 'host-b', Date.now(), log)).kind, 'held');
    assert.deepEqual(
      [...store.objects.keys()].filter((k) => k.includes('probe')),
      [],
      'the probe objects are removed',
    );
  });

  test('a lease older than its time to live (by the server clock) is taken over', async () => {
    const store = new ConditionalStore();
    await takeLease(store, 'host-a', Date.now(), log); // never released: host-a died
    const later = Date.now() + LEASE_TTL_MS + 1000;
    assert.equal((await takeLease(store, 'host-b', later, log)).kind, 'held');
  });

  test('a server that ignores If-None-Match, or a store without it, gives no lease', async () => {
    assert.deepEqual(await takeLease(new IgnoringStore(), 'h', Date.now(), log), {
      kind: 'none',
      reason: 'the server ignores If-None-Match',
    });
    const plain = new MemoryObjectStore();
    assert.equal((await takeLease(plain, 'h', Date.now(), log)).kind, 'none');
    assert.equal(plain.objects.size, 0);
  });
});
