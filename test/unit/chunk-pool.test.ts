// The read-buffer pool and its one giver-back, the zstd frame compressor: reused memory must never
// be visible in what the compressor produces.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { zstdDecompressSync } from 'node:zlib';
import { ChunkPool, giveBack, NAR_SLABS, READ_CHUNKS } from '../../src/chunk-pool.js';
import { encodeNar, type NarSource } from '../../src/format/nar-writer.js';
import { ComputePool } from '../../src/upload/compute-pool.js';
import { FRAME_OUTPUTS, ZstdFrameCompressor } from '../../src/upload/zstd-frames.js';

describe('ChunkPool', () => {
  test('a buffer given back is handed out again; unknown and repeated give-backs are ignored', () => {
    const pool = new ChunkPool(1024, 4);
    const a = pool.take(1024);
    const b = pool.take(100);
    assert.equal(b.length, 100);
    assert.notEqual(a.buffer, b.buffer);
    giveBack(b);
    giveBack(b); // twice: must not put the same memory on the free list twice
    giveBack(Buffer.alloc(1024)); // not ours
    const c = pool.take(1024);
    const d = pool.take(1024);
    assert.equal(c.buffer, b.buffer, 'the given-back buffer is reused');
    assert.notEqual(d.buffer, c.buffer, 'one give-back, one reuse');
    assert.throws(() => pool.take(1025), RangeError);
  });

  test('a slab comes back only once it is sealed and every slice lent from it is back', () => {
    const pool = new ChunkPool(64, 4);
    const slab = pool.slab();
    const a = slab.lend(0, 10);
    const b = slab.lend(10, 30);
    giveBack(a);
    giveBack(b);
    assert.notEqual(pool.take(64).buffer, slab.buffer.buffer, 'not sealed yet: the owner may still write');
    const c = slab.lend(30, 40);
    slab.seal();
    assert.throws(() => slab.lend(40, 50), /sealed/);
    giveBack(c.subarray(1)); // a view of a slice is not the slice: ignored
    assert.notEqual(pool.take(64).buffer, slab.buffer.buffer, 'one slice is still out');
    giveBack(c);
    giveBack(c);
    assert.equal(pool.take(64).buffer, slab.buffer.buffer, 'sealed and all back: reused');
    assert.notEqual(pool.take(64).buffer, slab.buffer.buffer, 'and only once');
  });

  test('no more than `keep` free buffers are kept', () => {
    const pool = new ChunkPool(16, 1);
    const [x, y] = [pool.take(16), pool.take(16)];
    giveBack(x);
    giveBack(y);
    assert.equal(pool.take(16).buffer, x.buffer);
    assert.notEqual(pool.take(16).buffer, y.buffer);
  });
});

/** Emits the data in pool chunks of random sizes and scribbles over every buffer given back. */
function poolSource(data: Buffer): Readable {
  let at = 0;
  return new Readable({
    read() {
      if (at >= data.length) return void this.push(null);
      const n = Math.min(data.length - at, 1 + Math.floor(Math.random() * READ_CHUNKS.chunkBytes));
      const chunk = READ_CHUNKS.take(n);
      data.copy(chunk, 0, at, at + n);
      at += n;
      this.push(chunk);
      // Whatever the compressor gave back so far is overwritten now, as the next read would.
      for (let i = 0; i < 4; i++) {
        const reused = READ_CHUNKS.take(READ_CHUNKS.chunkBytes);
        reused.fill(0xee);
        giveBack(reused);
      }
    },
  });
}

describe("ZstdFrameCompressor's output comes from pools and goes back once the store gives it", () => {
  for (const [name, size, frameMiB] of [
    ['a small NAR', 300 * 1024, 1],
    ['a NAR of several frames', 3 * 1024 * 1024 + 777, 1],
    ['frames of several steps each', 9 * 1024 * 1024 + 5, 4],
  ] as const) {
    test(name, async () => {
      const pool = new ComputePool(2, frameMiB * 1024 * 1024);
      const data = Buffer.concat([randomBytes(size >> 1), Buffer.alloc(size - (size >> 1), 5)]);
      const out: Buffer[] = [];
      const outputs = new Set<ArrayBufferLike>();
      const sink = new Writable({
        write(c: Buffer, _e, cb) {
          outputs.add(c.buffer);
          out.push(Buffer.from(c)); // copied, then given back: a store that has written it
          giveBack(c);
          // Whatever came back is handed out and overwritten at once, as the next frame would.
          const reused = FRAME_OUTPUTS.take(FRAME_OUTPUTS.chunkBytes);
          reused.fill(0xee);
          giveBack(reused);
          setImmediate(cb);
        },
      });
      await pipeline(Readable.from([data]), new ZstdFrameCompressor(pool, 3), sink);
      assert.ok(zstdDecompressSync(Buffer.concat(out)).equals(data));
      // node:zlib wrote into the pooled buffers, not buffers of its own, and they were reused.
      for (const b of outputs) assert.equal(b.byteLength, FRAME_OUTPUTS.chunkBytes);
      assert.ok(outputs.size <= 6, `${outputs.size} output buffers`);
    });
  }
});

describe('ZstdFrameCompressor gives read buffers back only once it has copied them', () => {
  test("the NAR encoder's slab slices, overwritten as soon as they come back", async () => {
    // Many small files: every chunk the encoder yields is a slice of a NAR_SLABS slab.
    const files = Array.from({ length: 400 }, (_, i) => randomBytes(100 + ((i * 7919) % 9000)));
    const names = files.map((_, i) => Buffer.from(`f${String(i).padStart(4, '0')}`));
    const source: NarSource = {
      node: (p) =>
        Promise.resolve(
          p.length === 1
            ? { type: 'directory' }
            : { type: 'regular', executable: false, size: files[Number(p.subarray(3).toString())]!.length },
        ),
      entries: () => Promise.resolve(names),
      // eslint-disable-next-line @typescript-eslint/require-await
      contents: async function* (p) {
        yield files[Number(p.subarray(3).toString())]!;
      },
    };
    const expected: Buffer[] = [];
    for await (const c of encodeNar(source, Buffer.from('/'))) expected.push(Buffer.from(c));
    const scribbling = new Readable({
      objectMode: false,
      read() {},
    });
    void (async () => {
      for await (const chunk of encodeNar(source, Buffer.from('/'))) {
        scribbling.push(chunk);
        // Whatever came back so far is handed out and overwritten, as the next NAR would.
        for (let i = 0; i < 4; i++) {
          const s = NAR_SLABS.slab();
          s.buffer.fill(0xee);
          s.seal();
        }
        await new Promise((r) => setImmediate(r));
      }
      scribbling.push(null);
    })();
    const out: Buffer[] = [];
    const sink = new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c);
        cb();
      },
    });
    await pipeline(scribbling, new ZstdFrameCompressor(new ComputePool(2, 1024 * 1024), 3), sink);
    assert.ok(zstdDecompressSync(Buffer.concat(out)).equals(Buffer.concat(expected)));
  });

  for (const [name, size] of [
    ['a small NAR (one frame kept by reference)', 700 * 1024],
    ['a NAR of several frames', 2 * 1024 * 1024 + 12345],
  ] as const) {
    test(name, async () => {
      // Small frames so that several frames, slot copies and the small-frame path all happen.
      const pool = new ComputePool(2, 1024 * 1024);
      const data = Buffer.concat([randomBytes(size >> 1), Buffer.alloc(size - (size >> 1), 3)]);
      const out: Buffer[] = [];
      const sink = new Writable({
        write(c: Buffer, _e, cb) {
          out.push(c);
          cb();
        },
      });
      await pipeline(poolSource(data), new ZstdFrameCompressor(pool, 3), sink);
      assert.ok(zstdDecompressSync(Buffer.concat(out)).equals(data));
    });
  }
});

describe('ZstdFrameCompressor stopped mid-frame', () => {
  for (const pauseMs of [0, 5]) {
    test(`gives its slot back (a source failing ${pauseMs} ms after its last chunk)`, async () => {
      const pool = new ComputePool(1, 4 * 1024 * 1024);
      const boom = new Error('source broke');
      async function* failing(): AsyncGenerator<Buffer> {
        for (let i = 0; i < 5; i++) yield randomBytes(512 * 1024);
        await new Promise((r) => setTimeout(r, pauseMs));
        throw boom;
      }
      const sink = new Writable({ write: (_c, _e, cb) => cb() });
      await assert.rejects(pipeline(Readable.from(failing()), new ZstdFrameCompressor(pool, 3), sink), boom);
      const slot = await Promise.race([
        pool.acquire(),
        new Promise<'stuck'>((r) => setTimeout(() => r('stuck'), 3000)),
      ]);
      assert.notEqual(slot, 'stuck', 'the stopped frame kept its slot');
      if (slot !== 'stuck') slot.release();
    });
  }
});
