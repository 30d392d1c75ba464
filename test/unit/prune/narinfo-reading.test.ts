// readNarinfoMetas: broken narinfos are marked and named in a warning once per run (also when the
// narinfo_meta table, not a GET, says they are broken), and an object too large to be a narinfo is
// never fetched. Over the in-memory object store, a real SQLite file and pino's real JSON lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../../src/log.js';
import { listBucket, MAX_NARINFO_BYTES, readNarinfoMetas } from '../../../src/prune/inventory.js';
import { memoryBucket } from '../../helpers/memory-bucket.js';
import { h, narinfoText } from './policy-fixtures.js';

async function setup() {
  const { store, db } = await memoryBucket('narinfo-reading');
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n'))
        if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const logger = createLogger({ destination: sink });
  const put = (key: string, body: string | Buffer) => store.putBytes(key, body, { contentType: 'x' });
  return { store, db, lines, put, deps: () => ({ store, db, storeDir: '/nix/store', logger }) };
}

const warned = (lines: Array<Record<string, unknown>>) =>
  lines.filter((l) => l.level === 40 && l.key !== undefined).map((l) => String(l.key));

test('broken narinfos are marked and named once per run, from a GET or from narinfo_meta', async () => {
  const { store, db, lines, put, deps } = await setup();
  await put(`${h(1)}.narinfo`, narinfoText(1));
  await put(`${h(2)}.narinfo`, 'garbage');
  await put(`${h(3)}.narinfo`, narinfoText(4)); // the StorePath of another path
  const run = deps();
  const first = await readNarinfoMetas((await listBucket(store)).objects, run, 'kept');
  assert.deepEqual(
    first.metas
      .filter((m) => m.malformed)
      .map((m) => m.hashPart)
      .sort(),
    [h(2), h(3)].sort(),
  );
  assert.deepEqual(warned(lines).sort(), [`${h(2)}.narinfo`, `${h(3)}.narinfo`].sort());
  assert.ok(lines.every((l) => l.level !== 40 || l.msg === 'malformed narinfo: kept'));

  // The same run looks again (a prune's second inventory): no repeated warnings, nothing fetched.
  const gets = store.calls.filter((c) => c.op === 'get').length;
  const again = await readNarinfoMetas((await listBucket(store)).objects, run, 'kept');
  assert.equal(again.read, 0);
  assert.equal(store.calls.filter((c) => c.op === 'get').length, gets);
  assert.equal(warned(lines).length, 2);

  // A new run reads nothing either (narinfo_meta knows them), and still names both.
  await readNarinfoMetas((await listBucket(store)).objects, deps(), 'kept');
  assert.equal(warned(lines).length, 4);
  assert.match(String(lines.at(-1)?.problem), /earlier run found it malformed/);
  db.close();
});

test('an object too large to be a narinfo is marked malformed without being fetched', async () => {
  const { store, db, lines, put, deps } = await setup();
  await put(`${h(5)}.narinfo`, Buffer.alloc(MAX_NARINFO_BYTES + 1, 0x41));
  const { metas } = await readNarinfoMetas((await listBucket(store)).objects, deps(), 'kept');
  assert.equal(metas[0]?.malformed, true);
  assert.equal(metas[0]?.narUrl, undefined);
  assert.deepEqual(
    store.calls.filter((c) => c.op === 'get'),
    [],
  );
  assert.match(String(lines.find((l) => l.level === 40)?.problem), /too large to be a narinfo/);
  db.close();
});
