// The bucket's grace record: its format (src/format/loft-state.ts), which grace prunes and
// uploaders follow while a change waits, and how a prune records and follows it
// (src/prune/bucket-grace.ts), over the in-memory object store.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BUCKET_GRACE_KEY,
  newBucketGrace,
  parseBucketGrace,
  pruneGraceOf,
  pruneView,
  renderBucketGrace,
  uploaderGrace,
  uploadGraceOf,
  withGraceChange,
} from '../../../src/format/loft-state.js';
import { ConfigError, FormatError } from '../../../src/errors.js';
import { createLogger } from '../../../src/log.js';
import { changeBucketGrace, graceForPrune } from '../../../src/prune/bucket-grace.js';
import { MemoryObjectStore } from '../../helpers/memory-object-store.js';

const H = 3_600_000;

describe('the grace record', () => {
  test('renders and parses back; rejects what it does not understand', () => {
    const b = withGraceChange(newBucketGrace(24 * H), H, 1000);
    assert.deepEqual(parseBucketGrace(renderBucketGrace(b)), b);
    assert.deepEqual(JSON.parse(renderBucketGrace(newBucketGrace(H))), {
      v: 1,
      kind: 'grace',
      protocol: 1,
      grace: H,
      settle: 10 * 60_000,
    });
    for (const bad of ['', '{}', '{"v":1,"kind":"grace","protocol":1,"grace":0,"settle":0}', '{"v":2}']) {
      assert.throws(() => parseBucketGrace(bad), FormatError, bad);
    }
  });

  test('a change waits for the grace in force: prunes follow the longer, uploaders the shorter', () => {
    const shorter = withGraceChange(newBucketGrace(24 * H), H, 0);
    assert.equal(shorter.pending?.from, 24 * H);
    assert.equal(pruneGraceOf(shorter, 24 * H - 1).grace, 24 * H);
    assert.equal(pruneGraceOf(shorter, 24 * H).grace, H, 'effective once the old grace passed');
    assert.equal(uploadGraceOf(shorter).grace, H);
    const longer = withGraceChange(newBucketGrace(H), 24 * H, 0);
    assert.equal(pruneGraceOf(longer, 0).grace, 24 * H);
    assert.equal(uploadGraceOf(longer).grace, H);
    assert.equal(
      withGraceChange(shorter, 24 * H, 5).pending,
      undefined,
      'asking for the grace in force cancels',
    );
  });

  test("an uploader follows the shortest of its own, the bucket's and an announced grace", () => {
    assert.equal(uploaderGrace(24 * H, pruneView([], newBucketGrace(60_000))).grace, 60_000);
    assert.equal(uploaderGrace(60_000, pruneView([], newBucketGrace(H))).grace, 60_000);
    assert.equal(uploaderGrace(24 * H, pruneView([])).grace, 24 * H, 'no record: as before');
  });
});

describe('graceForPrune', () => {
  const lines: string[] = [];
  const logger = createLogger({ destination: { write: (l: string) => void lines.push(l) } });
  const read = async (store: MemoryObjectStore) =>
    parseBucketGrace((await store.get(BUCKET_GRACE_KEY))!.toString());

  test('the first prune records its grace; a later one with another follows it and says so once', async () => {
    const store = new MemoryObjectStore();
    assert.equal((await graceForPrune({ store, logger }, H, 0, true)).grace, H);
    assert.deepEqual(await read(store), newBucketGrace(H));
    lines.length = 0;
    assert.equal((await graceForPrune({ store, logger }, 24 * H, 0, true)).grace, H);
    assert.equal(lines.filter((l) => l.includes("following the bucket's")).length, 1);
  });

  test('grace 0 records nothing; a dry run writes nothing', async () => {
    const store = new MemoryObjectStore();
    assert.deepEqual(await graceForPrune({ store, logger }, 0, 0, true), { grace: 0, settle: 0 });
    assert.equal(await graceForPrune({ store, logger }, H, 0, false).then(() => store.objects.size), 0);
  });

  test('a due change becomes current; a newer protocol or an unreadable record stops the prune', async () => {
    const store = new MemoryObjectStore();
    await changeBucketGrace({ store, logger }, 24 * H, 0, false);
    await changeBucketGrace({ store, logger }, H, 0, false);
    assert.equal((await graceForPrune({ store, logger }, H, 24 * H, true)).grace, H);
    assert.deepEqual(await read(store), newBucketGrace(H));
    await store.putBytes(BUCKET_GRACE_KEY, renderBucketGrace({ ...newBucketGrace(H), protocol: 2 }), {
      contentType: 'x',
    });
    await assert.rejects(graceForPrune({ store, logger }, H, 0, true), /newer than this loft's/);
    await store.putBytes(BUCKET_GRACE_KEY, 'garbage', { contentType: 'x' });
    await assert.rejects(graceForPrune({ store, logger }, H, 0, true), ConfigError);
  });
});
