// Which extra objects go with a path when it is pruned (src/prune/extras-index.ts): its listing,
// its realisations and debug-info entries, and its log; never an object a kept narinfo shares.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { extraObjectsOf, readExtrasIndex, sharedCounts } from '../../../src/prune/extras-index.js';
import type { NarinfoMeta } from '../../../src/state/prune-db.js';
import type { ObjectInfo } from '../../../src/storage/object-store.js';
import { MemoryObjectStore } from '../../helpers/memory-object-store.js';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const DRV = `${'d'.repeat(32)}-thing.drv`;
const ID = `sha256:${'1'.repeat(64)}!out`;

function meta(hashPart: string, extra: Partial<NarinfoMeta> = {}): NarinfoMeta {
  return { hashPart, narinfoSize: 1, lastModified: 0, references: [], malformed: false, ...extra };
}

async function bucket(bodies: Record<string, string>) {
  const store = new MemoryObjectStore();
  const objects = new Map<string, ObjectInfo>();
  for (const [key, body] of Object.entries(bodies)) {
    store.objects.set(key, { body: Buffer.from(body), contentType: 'x', lastModified: new Date(0) });
    objects.set(key, { key, size: body.length, lastModified: new Date(0) });
  }
  return { objects, index: await readExtrasIndex(objects, { store, storeDir: '/nix/store' }) };
}

const keys = (xs: Array<{ key: string }>) => xs.map((x) => x.key).sort();

void describe('extras of a pruned path', () => {
  const realisation = JSON.stringify({
    dependentRealisations: {},
    id: ID,
    outPath: `${A}-thing`,
    signatures: [],
  });
  const v2 = JSON.stringify({ outPath: `${A}-thing`, signatures: [] });
  const debug = '{"archive":"../nar/a.nar.zst","member":"lib/debug/.build-id/ab/x.debug"}';

  void test('listing, log, realisations of both layouts and debug info go with their one owner', async () => {
    const { objects, index } = await bucket({
      [`${A}.ls`]: '{}',
      [`log/${DRV}`]: 'log',
      [`realisations/${ID}.doi`]: realisation,
      [`build-trace-v2/${DRV}/out.doi`]: v2,
      'debuginfo/abx.debug': debug,
      'realisations/junk.doi': 'not json',
    });
    const a = meta(A, { deriver: DRV, narUrl: 'nar/a.nar.zst' });
    const got = extraObjectsOf(a, objects, index, sharedCounts([a, meta(B)]));
    assert.deepEqual(keys(got), [
      `${A}.ls`,
      `build-trace-v2/${DRV}/out.doi`,
      'debuginfo/abx.debug',
      `log/${DRV}`,
      `realisations/${ID}.doi`,
    ]);
    assert.deepEqual(extraObjectsOf(meta(B), objects, index, sharedCounts([a, meta(B)])), []);
  });

  void test('a log two outputs share and a NAR two narinfos name stay with either', async () => {
    const { objects, index } = await bucket({ [`log/${DRV}`]: 'log', 'debuginfo/abx.debug': debug });
    const a = meta(A, { deriver: DRV, narUrl: 'nar/a.nar.zst' });
    const b = meta(B, { deriver: DRV, narUrl: 'nar/a.nar.zst' });
    assert.deepEqual(extraObjectsOf(a, objects, index, sharedCounts([a, b])), []);
  });
});
