// The hash thread: its digests are sha256's, whatever the chunking and however many hashes
// interleave, and a HashMeter on it passes every chunk on unchanged.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HashThread } from '../../../src/upload/hash-thread.js';
import { HashMeter } from '../../../src/upload/hash-meter.js';

const thread = new HashThread();
after(() => thread.close());

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('HashThread', () => {
  test('interleaved hashes of chunks larger and smaller than a segment, reused after each update', async () => {
    const inputs = [0, 1, 5000, 3 * 1024 * 1024 + 17, 9 * 1024 * 1024].map((n) => randomBytes(n));
    const hashes = inputs.map(() => thread.hasher());
    // More bytes than the shared segments hold: updates must wait for segments and still finish.
    await Promise.all(
      inputs.map(async (input, i) => {
        const scratch = Buffer.alloc(2 * 1024 * 1024);
        for (let at = 0; at < input.length;) {
          const n = Math.min(input.length - at, 1 + ((at * 7919 + i) % scratch.length));
          input.copy(scratch, 0, at, at + n);
          // The same memory for every chunk of a hash: the copy must happen before update resolves.
          await hashes[i]!.update(scratch.subarray(0, n));
          at += n;
        }
      }),
    );
    const digests = await Promise.all(hashes.map((h) => h.digest()));
    assert.deepEqual(
      digests.map((d) => d.toString('hex')),
      inputs.map(sha),
    );
  });

  test('a dropped hash does not disturb the others; the thread lets the process exit when idle', async () => {
    const a = thread.hasher();
    const b = thread.hasher();
    await a.update(Buffer.from('abandoned'));
    a.drop();
    await b.update(Buffer.from('kept'));
    assert.equal((await b.digest()).toString('hex'), sha(Buffer.from('kept')));
  });

  test('a HashMeter on the thread passes chunks on unchanged and digests what went through', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 3);
    const meter = new HashMeter(thread.hasher());
    const out: Buffer[] = [];
    const chunks = Array.from({ length: 6 }, (_, i) =>
      data.subarray(i * 1024 * 1024, (i + 1) * 1024 * 1024 + (i === 5 ? 3 : 0)),
    );
    await pipeline(
      Readable.from(chunks),
      meter,
      new Writable({
        write(c: Buffer, _e, cb) {
          out.push(c);
          cb();
        },
      }),
    );
    assert.ok(Buffer.concat(out).equals(data));
    assert.equal(meter.bytes, data.length);
    assert.equal((await meter.finalDigest()).toString('hex'), sha(data));
    assert.throws(() => meter.digest(), /asynchronous/);
  });
});
