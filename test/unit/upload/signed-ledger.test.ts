// The signed-record ledger (src/upload/signed-ledger.ts) over an in-memory object store: what it
// writes, when, and how several writers' records are read and folded together without loss.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSignedRecord, signedRecordPrefix } from '../../../src/format/signed-record.js';
import { silentLogger } from '../../../src/log.js';
import { COMPACT_OVER, SignedLedger } from '../../../src/upload/signed-ledger.js';
import { MemoryObjectStore } from '../../helpers/memory-object-store.js';

const KEY = 'cache-1:7Jlt5lq4UzTt4TbEyS6XrHOuZD3kmDhxRJj6lC3k5uY=';
const h = (i: number) =>
  i
    .toString(32)
    .padStart(32, '0')
    .replace(/[eotu]/g, 'z');
const ledger = (store: MemoryObjectStore, more: { clock?: () => number; minFlushIntervalMs?: number } = {}) =>
  new SignedLedger({ store, publicKey: KEY, logger: silentLogger(), ...more });
const records = (store: MemoryObjectStore) =>
  [...store.objects.keys()].filter((k) => k.startsWith(signedRecordPrefix(KEY)));

test('a writer writes one record, only when it learned something, and others read it', async () => {
  const store = new MemoryObjectStore();
  const a = ledger(store);
  await a.flush();
  assert.deepEqual(records(store), [], 'nothing learned, nothing written');
  a.note(h(1), 'e1', 'f1');
  a.note(h(2), 'e2', 'f2');
  await a.flush();
  a.note(h(1), 'e1', 'f1');
  await a.flush();
  assert.equal(store.calls.filter((c) => c.op === 'putBytes').length, 1, 'a known entry changes nothing');
  const b = ledger(store);
  await b.load();
  assert.ok(b.vouches(h(1), 'e1', 'f1'));
  assert.ok(!b.vouches(h(1), 'e1-other', 'f1'), 'another ETag');
  assert.ok(!b.vouches(h(1), 'e1', 'f-other'), 'another fingerprint');
  assert.ok(!b.vouches(h(1), undefined, 'f1'), 'no ETag');
  assert.ok(!b.vouches(h(3), 'e3', 'f3'), 'no entry');
});

test('two writers keep separate records: neither loses what the other wrote', async () => {
  const store = new MemoryObjectStore();
  const a = ledger(store);
  const b = ledger(store);
  await Promise.all([a.load(), b.load()]);
  a.note(h(1), 'e1', 'f1');
  b.note(h(2), 'e2', 'f2');
  await Promise.all([a.flush(), b.flush()]);
  assert.equal(records(store).length, 2);
  const c = ledger(store);
  await c.load();
  assert.ok(c.vouches(h(1), 'e1', 'f1') && c.vouches(h(2), 'e2', 'f2'));
});

test(`over ${COMPACT_OVER} records: folded into the reader's own, minus entries a listing contradicts`, async () => {
  const store = new MemoryObjectStore();
  for (let i = 0; i <= COMPACT_OVER; i++) {
    const w = ledger(store);
    w.note(h(i), `e${i}`, `f${i}`);
    await w.flush();
  }
  assert.equal(records(store).length, COMPACT_OVER + 1);
  const r = ledger(store);
  await r.load();
  r.note(h(100), 'e100', 'f100');
  // This run's listing: narinfo 0 rewritten since, narinfo 1 gone, the rest as recorded.
  const listed = new Map(Array.from({ length: COMPACT_OVER + 1 }, (_, i) => [h(i), `e${i}`]));
  listed.set(h(0), 'rewritten');
  listed.delete(h(1));
  await r.flush(listed);
  const left = records(store);
  assert.equal(left.length, 1);
  const entries = parseSignedRecord(store.objects.get(left[0]!)!.body.toString(), KEY);
  assert.deepEqual(
    [...entries.keys()].sort(),
    [...Array.from({ length: COMPACT_OVER - 1 }, (_, i) => h(i + 2)), h(100)].sort(),
  );
});

test('a long-running writer rewrites its record at most once per interval', async () => {
  const store = new MemoryObjectStore();
  let now = 0;
  const d = ledger(store, { clock: () => now, minFlushIntervalMs: 1000 });
  d.note(h(1), 'e1', 'f1');
  await d.flush();
  d.note(h(2), 'e2', 'f2');
  now = 500;
  await d.flush();
  assert.equal(store.calls.filter((c) => c.op === 'putBytes').length, 1);
  now = 1000;
  await d.flush();
  assert.equal(store.calls.filter((c) => c.op === 'putBytes').length, 2);
  const entries = parseSignedRecord(store.objects.get(records(store)[0]!)!.body.toString(), KEY);
  assert.equal(entries.size, 2, 'the one record holds both');
});

test('a failing store costs nothing but the record: load and flush never reject', async () => {
  const store = new MemoryObjectStore();
  store.failPut = () => new Error('refused');
  const a = ledger(store);
  a.note(h(1), 'e1', 'f1');
  await a.flush();
  store.list = () => {
    throw new Error('no listing');
  };
  const b = ledger(store);
  await b.load();
  assert.ok(!b.vouches(h(1), 'e1', 'f1'));
});
