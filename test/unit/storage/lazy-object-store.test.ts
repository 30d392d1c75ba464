import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { LazyObjectStore } from '../../../src/storage/lazy-object-store.js';
import { MemoryObjectStore } from '../../helpers/memory-object-store.js';

test('opens the real store once, on first use, and not at all when unused', async () => {
  let opened = 0;
  const inner = new MemoryObjectStore();
  const lazy = new LazyObjectStore('memory://lazy', () => {
    opened++;
    return Promise.resolve(inner);
  });
  await lazy.close();
  assert.equal(opened, 0);
  assert.equal(await lazy.head('x'), undefined);
  await lazy.putBytes('x', 'body', { contentType: 't' });
  const keys: string[] = [];
  for await (const o of lazy.list('')) keys.push(o.key);
  assert.deepEqual(keys, ['x']);
  assert.equal(opened, 1);
});

test('a failed open fails every call with that error and destroys a stream body', async () => {
  let opened = 0;
  const lazy = new LazyObjectStore('memory://lazy', () => {
    opened++;
    return Promise.reject(new Error('bad credentials'));
  });
  await assert.rejects(lazy.head('x'), /bad credentials/);
  const body = Readable.from([Buffer.from('nar')]);
  const bodyErrors: Error[] = [];
  body.on('error', (e) => bodyErrors.push(e)); // in loft a pipeline listens; here the test does
  await assert.rejects(lazy.putStream('y', body, { contentType: 't' }), /bad credentials/);
  assert.ok(body.destroyed);
  await new Promise((r) => setImmediate(r));
  assert.match(String(bodyErrors[0]), /bad credentials/);
  assert.equal(opened, 1);
  await lazy.close();
});
