import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { ChunkPool } from '../../../src/chunk-pool.js';
import { BodySource, gatherBody } from '../../../src/storage/body-source.js';

// The chunks of an S3 body are lent pieces that the store gives back one by one; a reader that
// merged them into fresh Buffers would leave every piece to the garbage collector.
test('a reader that lags gets each chunk as it was pushed, never a merged copy', async () => {
  const body = new PassThrough();
  const source = new BodySource(body);
  const pushed = [Buffer.from('first'), Buffer.from('second'), Buffer.from('third')];
  for (const chunk of pushed) body.write(chunk);
  body.end();
  await tick(); // everything is buffered in the body before the first read
  const read: Buffer[] = [];
  for (let c = await source.next(); c !== undefined; c = await source.next()) read.push(c);
  assert.equal(read.length, pushed.length);
  pushed.forEach((chunk, i) => assert.equal(read[i], chunk, `chunk ${i} is the very Buffer pushed`));
  assert.equal(await source.next(), undefined, 'stays ended');
});

test('readUpTo stops after the chunk that passes the limit, and rest() goes on from there', async () => {
  const chunks = [Buffer.alloc(4, 1), Buffer.alloc(4, 2), Buffer.alloc(4, 3), Buffer.alloc(4, 4)];
  const source = new BodySource(Readable.from(chunks, { objectMode: false }));
  const head = await source.readUpTo(6);
  assert.equal(head.ended, false);
  assert.deepEqual(head.chunks, chunks.slice(0, 2));
  const all: Buffer[] = [];
  for await (const c of source.rest(head.chunks)) all.push(c);
  assert.deepEqual(all, chunks);
});

// The store's frame holds the read-ahead array while every part is sent: a chunk it kept would stay
// reachable (and its memory with it) long after it was copied into a part and given back.
test('rest() lets go of each read-ahead chunk as it yields it', async () => {
  const chunks = [Buffer.alloc(4, 1), Buffer.alloc(4, 2), Buffer.alloc(4, 3)];
  const source = new BodySource(Readable.from(chunks, { objectMode: false }));
  const head = await source.readUpTo(6);
  const rest = source.rest(head.chunks);
  assert.equal((await rest.next()).value, chunks[0]);
  assert.ok(!head.chunks.includes(chunks[0]!), 'the first chunk is no longer held by the read-ahead');
  assert.equal((await rest.next()).value, chunks[1]);
  assert.deepEqual(head.chunks, [], 'nothing read ahead is held once it has been yielded');
  assert.equal((await rest.next()).value, chunks[2]);
  assert.equal((await rest.next()).done, true);
});

test('a body that fits within the limit ends in readUpTo', async () => {
  const source = new BodySource(Readable.from([Buffer.from('ab'), Buffer.from('cd')]));
  const head = await source.readUpTo(100);
  assert.equal(head.ended, true);
  assert.equal(Buffer.concat(head.chunks).toString(), 'abcd');
});

test("the body's failure is what next() throws, and it is remembered as the body's", async () => {
  const body = new PassThrough();
  const source = new BodySource(body);
  body.write(Buffer.from('queued before the failure'));
  const boom = new Error('compression failed');
  body.destroy(boom);
  await assert.rejects(source.next(), (err) => err === boom);
  assert.equal(source.error, boom);
});

test('a body destroyed before its end without an error is a failure, not an end', async () => {
  const body = new PassThrough();
  const source = new BodySource(body);
  body.write(Buffer.from('x'));
  setTimeout(() => body.destroy(), 5);
  await assert.rejects(
    (async () => {
      while ((await source.next()) !== undefined);
    })(),
    { code: 'ERR_STREAM_PREMATURE_CLOSE' },
  );
  assert.ok(source.error);
});

test('gatherBody: one chunk goes as it is and comes back after the request', () => {
  const chunk = Buffer.from('one piece');
  const back: Buffer[] = [];
  const body = gatherBody(
    [chunk],
    () => new ChunkPool(1024, 1),
    (c) => back.push(c),
  );
  assert.equal(body.bytes, chunk, 'no copy');
  assert.deepEqual(back, [], 'not given back while the request may still read it');
  body.done();
  assert.deepEqual(back, [chunk]);
});

test('gatherBody: chunks are copied into a pooled buffer, given back at once, and the buffer returns', () => {
  const pool = new ChunkPool(1024, 1);
  const chunks = [Buffer.from('abc'), Buffer.from('defg')];
  const back: Buffer[] = [];
  const body = gatherBody(
    chunks,
    () => pool,
    (c) => back.push(c),
  );
  assert.deepEqual(back, chunks, 'each chunk given back once copied');
  for (const c of chunks) c.fill(0); // a lender reusing them must not change the body
  assert.equal(body.bytes.toString(), 'abcdefg');
  assert.equal(pool.kept, 0);
  body.done();
  body.done();
  assert.equal(pool.kept, 1, 'the buffer goes back to its pool once');
  const again = gatherBody([Buffer.from('x'), Buffer.from('y')], () => pool, undefined);
  assert.equal(again.bytes.buffer, body.bytes.buffer, 'and is reused by the next body');
});

test('gatherBody: a body no pool fits is concatenated', () => {
  const body = gatherBody([Buffer.from('ab'), Buffer.from('cd')], () => undefined, undefined);
  assert.equal(body.bytes.toString(), 'abcd');
  body.done();
});

// Past `hold`, chunks are copied into the first part as they arrive and given back at once: held,
// a part's worth of zstd output pinned a slab per frame until the decision (body-source.ts).
test('readHead copies chunks past the hold into the first part and gives each back at once', async () => {
  const chunks = [1, 2, 3, 4, 5].map((v) => Buffer.alloc(4, v));
  const source = new BodySource(Readable.from(chunks, { objectMode: false }));
  const given: Buffer[] = [];
  let taken = 0;
  const takePart = (): Buffer => (taken++, Buffer.alloc(10, 0xff));
  const head = await source.readHead(10, 6, takePart, (c) => given.push(c));
  assert.equal(taken, 1);
  assert.equal(head.ended, false);
  // 4 + 4 = 8 fit in the part of 10; the third chunk does not and is the start of the rest.
  assert.deepEqual(head.part?.buffer.subarray(0, head.part.filled), Buffer.concat(chunks.slice(0, 2)));
  assert.deepEqual(head.chunks, [chunks[2]]);
  assert.deepEqual(given, chunks.slice(0, 2), 'every copied chunk is given back, none other');
  const rest: Buffer[] = [];
  for await (const c of source.rest(head.chunks)) rest.push(c);
  assert.deepEqual(rest, chunks.slice(2));
});

test('readHead: a body within the hold is kept as its chunks, one up to a part ends in the part', async () => {
  const small = new BodySource(Readable.from([Buffer.from('ab'), Buffer.from('cd')]));
  const none = (): Buffer => assert.fail('no part for a small body');
  const head = await small.readHead(10, 6, none, () => assert.fail('nothing copied'));
  assert.deepEqual(head, { chunks: [Buffer.from('ab'), Buffer.from('cd')], ended: true });

  const given: Buffer[] = [];
  const whole = new BodySource(Readable.from(['abcd', 'efgh', 'ij'].map((s) => Buffer.from(s))));
  const ended = await whole.readHead(
    10,
    6,
    () => Buffer.alloc(10),
    (c) => given.push(c),
  );
  assert.equal(ended.ended, true);
  assert.equal(ended.part?.buffer.subarray(0, ended.part.filled).toString(), 'abcdefghij');
  assert.deepEqual(ended.chunks, []);
  assert.equal(given.length, 3);
});

// A body just over one part goes in one PUT: the chunks past the part are held up to the slack.
test('readHead: past the part, chunks are held up to the slack; a body ending there ends the read', async () => {
  const chunks = ['abcd', 'efgh', 'ij', 'k', 'l'].map((s) => Buffer.from(s));
  const given: Buffer[] = [];
  const over = new BodySource(Readable.from(chunks));
  const head = await over.readHead(
    8,
    6,
    () => Buffer.alloc(8),
    (c) => given.push(c),
    4,
  );
  assert.equal(head.ended, true, 'ij, k and l: 12 bytes are within 8 + 4');
  assert.equal(head.part?.buffer.subarray(0, head.part.filled).toString(), 'abcdefgh');
  assert.deepEqual(head.chunks, chunks.slice(2), 'held as they came, not copied');
  assert.deepEqual(given, chunks.slice(0, 2), 'only the copied chunks are given back');

  const longer = [...chunks, Buffer.from('m')];
  const past = new BodySource(Readable.from(longer));
  const cut = await past.readHead(8, 6, () => Buffer.alloc(8), undefined, 4);
  assert.equal(cut.ended, false, '13 bytes are past 8 + 4');
  assert.deepEqual(cut.chunks, longer.slice(2), 'the held chunks are the start of the rest');
  const rest: Buffer[] = [];
  for await (const c of past.rest(cut.chunks)) rest.push(c);
  assert.deepEqual(rest, longer.slice(2));

  // The slack counts from the part's size, not from where the part stopped filling.
  const pieces = ['abcdef', 'ghijk'].map((t) => Buffer.from(t));
  const short = new BodySource(Readable.from(pieces));
  const whole = await short.readHead(8, 6, () => Buffer.alloc(8), undefined, 4);
  assert.equal(whole.ended, true, '11 bytes are within 8 + 4');
  assert.equal(whole.part?.filled, 6);
  assert.deepEqual(whole.chunks, [pieces[1]]);

  const noSlack = new BodySource(Readable.from(chunks));
  const strict = await noSlack.readHead(8, 6, () => Buffer.alloc(8), undefined);
  assert.equal(strict.ended, false, 'without a slack the first chunk past the part starts the rest');
  assert.deepEqual(strict.chunks, [chunks[2]]);
});
