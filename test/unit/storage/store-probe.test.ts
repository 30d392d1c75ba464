// loft doctor's target-neutral checks over an in-memory store (a fake of our own interface): what a
// check says it wrote must be what it wrote, and advice must fit the failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StorageError } from '../../../src/errors.js';
import { checkCacheInfo, checkConditionalCreate, checkReadWrite } from '../../../src/storage/store-probe.js';
import { MemoryObjectStore } from '../../helpers/memory-object-store.js';

const unreachable = () =>
  new StorageError('cannot reach http://127.0.0.1:9/cache (ECONNREFUSED): check http.url and the network', {
    code: 'E_STORAGE_UNREACHABLE',
    transient: true,
  });

test('a working store: the probe key is written, read, deleted, and named as written', async () => {
  const store = new MemoryObjectStore();
  const r = await checkReadWrite(store, 'abcd');
  assert.equal(r.status, 'ok');
  assert.deepEqual(r.wrote, ['.loft/doctor-abcd-object']);
  assert.equal(store.objects.size, 0, 'nothing left behind');
});

test('an unreachable target: nothing is named as written, and the advice is the connection', async () => {
  const store = new MemoryObjectStore();
  store.putBytes = () => Promise.reject(unreachable());
  const r = await checkReadWrite(store, 'abcd');
  assert.equal(r.status, 'fail');
  assert.equal(r.wrote, undefined);
  assert.match(r.fix ?? '', /connection/);
  store.head = () => Promise.reject(unreachable());
  const info = await checkCacheInfo(store);
  assert.equal(info.status, 'fail');
  assert.match(info.fix ?? '', /connection/);
});

test('a refused write names the permission, on any kind of target', async () => {
  const store = new MemoryObjectStore();
  store.putBytes = () =>
    Promise.reject(
      new StorageError('access denied (HTTP 403)', { code: 'E_STORAGE_AUTH', transient: false }),
    );
  const r = await checkReadWrite(store, 'abcd');
  assert.match(r.fix ?? '', /allow loft to write objects/);
});

test('a conditional create that fails at once wrote nothing', async () => {
  const store = new MemoryObjectStore();
  const r = await checkConditionalCreate(
    Object.assign(store, { createExclusive: () => Promise.reject(unreachable()) }),
    'abcd',
  );
  assert.equal(r.status, 'warn');
  assert.equal(r.wrote, undefined);
});
