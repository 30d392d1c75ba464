// The daemon's roots publisher over the in-memory object store: it writes this host's roots at
// start, keeps going after a failed write, and stops when asked; with no publish_roots entries the
// daemon publishes nothing at all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseRoots } from '../../../src/format/loft-state.js';
import { silentLogger } from '../../../src/log.js';
import { publishConfiguredRoots, startRootsPublisher } from '../../../src/daemon/roots-publisher.js';
import { MemoryObjectStore } from '../../helpers/memory-object-store.js';

test('publishes at start and on every tick, survives a failed write, stops', async () => {
  const store = new MemoryObjectStore();
  let calls = 0;
  store.failPut = () => (++calls === 1 ? new Error('socket hang up') : undefined);
  const publisher = startRootsPublisher({
    store,
    host: 'Build Host_1',
    resolve: () => Promise.resolve(['a'.repeat(32)]),
    logger: silentLogger(),
    everyMs: 20,
  });
  for (let i = 0; i < 50 && !store.objects.has('.loft/roots/build-host-1.json'); i++) await sleep(10);
  await publisher.stop();
  const body = store.objects.get('.loft/roots/build-host-1.json')?.body.toString();
  assert.ok(body, 'written after the first write failed');
  assert.deepEqual(parseRoots(body), { kind: 'roots', host: 'Build Host_1', paths: ['a'.repeat(32)] });
  const after = calls;
  await sleep(60);
  assert.equal(calls, after, 'nothing written once stopped');
});

test('publish_roots: nothing configured writes nothing; an entry is resolved in the store and published', async () => {
  const storeDir = await realpath(await mkdtemp(join(tmpdir(), 'loft-roots-')));
  try {
    const hash = 'b'.repeat(32);
    await mkdir(join(storeDir, `${hash}-system`));
    const store = new MemoryObjectStore();
    const opts = { storeDir, store, host: 'h1', logger: silentLogger() };
    await publishConfiguredRoots({ ...opts, entries: [] })();
    assert.deepEqual(store.calls, [], 'no entries: no request at all');
    const stop = publishConfiguredRoots({ ...opts, entries: [join(storeDir, `${hash}-system`)] });
    for (let i = 0; i < 50 && !store.objects.has('.loft/roots/h1.json'); i++) await sleep(10);
    await stop();
    const body = store.objects.get('.loft/roots/h1.json')?.body.toString();
    assert.ok(body, 'the roots file is written at start');
    assert.deepEqual(parseRoots(body).paths, [hash]);
  } finally {
    await rm(storeDir, { recursive: true, force: true });
  }
});
