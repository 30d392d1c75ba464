// Reused memory and its one way back: NarMemory lends the NAR reader's buffers, the zstd frame
// compressor reports each input chunk once it has copied it, and only then may the memory be
// reused. Reused memory must never be visible in what the compressor produces.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { zstdDecompressSync } from 'node:zlib';
import { ChunkPool, NarMemory } from '../../src/chunk-pool.js';
import { sha256Hash } from '../../src/format/hash.js';
import { encodeNar, type NarSource } from '../../src/format/nar-writer.js';
import { dumpNar } from '../../src/store/dump-nar.js';
import { LocalObjectStore } from '../../src/storage/local-object-store.js';
import { ComputePool } from '../../src/upload/compute-pool.js';
import { uploadNar } from '../../src/upload/upload-path.js';
import { ZstdFrameCompressor } from '../../src/upload/zstd-frames.js';

describe('ChunkPool and NarMemory', () => {
  test('a recycled buffer is taken again, up to `keep` of them', () => {
    const pool = new ChunkPool(16, 1);
    const [x, y] = [pool.take(), pool.take()];
    pool.recycle(x);
    pool.recycle(y);
    assert.equal(pool.take(), x);
    assert.notEqual(pool.take(), y);
  });

  test('a pool that frees dropped buffers gives their memory back at once; one that does not leaves it', () => {
    const MiB = 1024 * 1024;
    for (const frees of [true, false]) {
      const pool = new ChunkPool(4 * MiB, 1, frees);
      const bufs = Array.from({ length: 6 }, () => pool.take().fill(7));
      const before = process.memoryUsage().arrayBuffers;
      for (const b of bufs) pool.recycle(b);
      const after = process.memoryUsage().arrayBuffers;
      // The first is kept whole; the five dropped are freed (20 MiB less) only when the pool frees them.
      assert.equal(bufs[0]!.length, 4 * MiB);
      assert.equal(
        bufs.slice(1).every((b) => b.length === 0),
        frees,
      );
      if (frees) assert.ok(before - after >= 20 * MiB, `${(before - after) / MiB} MiB freed`);
      else assert.equal(after, before);
      pool.drain();
      assert.equal(bufs[0]!.length, frees ? 0 : 4 * MiB, 'drain frees the kept ones too');
      // A buffer that does not own its whole ArrayBuffer (a view) is never detached.
      const view = Buffer.allocUnsafeSlow(8 * MiB).subarray(0, 4 * MiB);
      new ChunkPool(4 * MiB, 0, true).recycle(view);
      assert.equal(view.length, 4 * MiB);
    }
  });

  test('a read given back is lent again; unknown and repeated give-backs are ignored', () => {
    const memory = new NarMemory();
    const a = memory.read(memory.readBytes);
    const b = memory.read(100);
    assert.equal(b.length, 100);
    assert.notEqual(a.buffer, b.buffer);
    memory.giveBack(b);
    memory.giveBack(b); // twice: must not put the same memory on the free list twice
    memory.giveBack(Buffer.alloc(1024)); // not lent
    new NarMemory().giveBack(a); // lent by another memory: ignored there
    const c = memory.read(1024);
    const d = memory.read(1024);
    assert.equal(c.buffer, b.buffer, 'the given-back buffer is reused');
    assert.notEqual(d.buffer, c.buffer, 'one give-back, one reuse');
    assert.throws(() => memory.read(memory.readBytes + 1), RangeError);
  });

  test('a slab comes back only once it is sealed and every slice lent from it is back', () => {
    const memory = new NarMemory();
    const slab = memory.slab();
    const slabOf = (m: NarMemory) => {
      const s = m.slab();
      s.seal();
      return s.buffer;
    };
    const a = slab.lend(0, 10);
    const b = slab.lend(10, 30);
    memory.giveBack(a);
    memory.giveBack(b);
    assert.notEqual(slabOf(memory), slab.buffer, 'not sealed yet: the owner may still write');
    const c = slab.lend(30, 40);
    slab.seal();
    assert.throws(() => slab.lend(40, 50), /sealed/);
    memory.giveBack(c.subarray(1)); // a view of a slice is not the slice: ignored
    assert.notEqual(slabOf(memory), slab.buffer, 'one slice is still out');
    memory.giveBack(c);
    memory.giveBack(c);
    const again = memory.slab();
    assert.equal(again.buffer, slab.buffer, 'sealed and all back: reused');
    assert.notEqual(memory.slab().buffer, slab.buffer, 'and only once');
  });
});

/** Emits the data in lent chunks of random sizes and scribbles over every buffer given back. */
function lentSource(data: Buffer, memory: NarMemory): Readable {
  let at = 0;
  return new Readable({
    read() {
      if (at >= data.length) return void this.push(null);
      const n = Math.min(data.length - at, 1 + Math.floor(Math.random() * memory.readBytes));
      const chunk = memory.read(n);
      data.copy(chunk, 0, at, at + n);
      at += n;
      this.push(chunk);
      // Whatever came back so far is lent again and overwritten now, as the next read would.
      for (let i = 0; i < 4; i++) {
        const reused = memory.read(memory.readBytes);
        reused.fill(0xee);
        memory.giveBack(reused);
      }
    },
  });
}

/** A compressor whose every `consumed` report goes to `memory`, counted per chunk. */
function reporting(pool: ComputePool, memory: NarMemory, reports: Map<Buffer, number>) {
  return new ZstdFrameCompressor(pool, 3, {
    consumed: (chunk) => {
      reports.set(chunk, (reports.get(chunk) ?? 0) + 1);
      memory.giveBack(chunk);
    },
  });
}

describe('ZstdFrameCompressor reports each chunk consumed once, only after copying it', () => {
  test("the NAR encoder's slab slices, overwritten as soon as they come back", async () => {
    // Many small files: every chunk the encoder yields is a slice of a NarMemory slab.
    const memory = new NarMemory();
    const files = Array.from({ length: 400 }, (_, i) => randomBytes(100 + ((i * 7919) % 9000)));
    const names = files.map((_, i) => Buffer.from(`f${String(i).padStart(4, '0')}`));
    const source = (lend: boolean): NarSource => ({
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
      ...(lend ? { slab: () => memory.slab() } : {}),
    });
    const expected: Buffer[] = [];
    for await (const c of encodeNar(source(false), Buffer.from('/'))) expected.push(c);
    const scribbling = new Readable({ read() {} });
    void (async () => {
      for await (const chunk of encodeNar(source(true), Buffer.from('/'))) {
        scribbling.push(chunk);
        // Whatever came back so far is lent again and overwritten, as the next NAR would.
        for (let i = 0; i < 4; i++) {
          const s = memory.slab();
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
    const reports = new Map<Buffer, number>();
    await pipeline(scribbling, reporting(new ComputePool(2, 1024 * 1024), memory, reports), sink);
    assert.ok(zstdDecompressSync(Buffer.concat(out)).equals(Buffer.concat(expected)));
    assert.ok(
      [...reports.values()].every((n) => n === 1),
      'each chunk reported once',
    );
  });

  for (const [name, size] of [
    ['a small NAR (one frame gathered)', 700 * 1024],
    ['a NAR of several frames', 2 * 1024 * 1024 + 12345],
  ] as const) {
    test(name, async () => {
      // Small frames so that several frames, slot copies and the small-frame path all happen.
      const memory = new NarMemory();
      const pool = new ComputePool(2, 1024 * 1024);
      const data = Buffer.concat([randomBytes(size >> 1), Buffer.alloc(size - (size >> 1), 3)]);
      const out: Buffer[] = [];
      const sink = new Writable({
        write(c: Buffer, _e, cb) {
          out.push(c);
          cb();
        },
      });
      const sent: Buffer[] = [];
      const source = lentSource(data, memory).on('data', (c: Buffer) => sent.push(c));
      const reports = new Map<Buffer, number>();
      await pipeline(source, reporting(pool, memory, reports), sink);
      assert.ok(zstdDecompressSync(Buffer.concat(out)).equals(data));
      assert.equal(reports.size, sent.length, 'every chunk reported');
      assert.ok(
        [...reports.values()].every((n) => n === 1),
        'and only once',
      );
    });
  }
});

describe('an upload lends NAR memory only to a compressor that gives it back', () => {
  test('zstd and none: the stored NAR is exact while every recycled buffer is overwritten', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loft-nar-memory-'));
    try {
      const tree = join(dir, 'tree');
      await mkdir(tree);
      const big = randomBytes(3 * 1024 * 1024 + 77);
      await writeFile(join(tree, 'big'), big);
      for (let i = 0; i < 50; i++) await writeFile(join(tree, `small-${i}`), randomBytes(50 + i * 300));
      const nar: Buffer[] = [];
      for await (const c of dumpNar(tree)) nar.push(c as Buffer);
      const narBytes = Buffer.concat(nar);
      const memory = new NarMemory();
      let reads = 0;
      const store = new LocalObjectStore(join(dir, 'cache'));
      for (const compression of ['zstd', 'none'] as const) {
        const info = {
          path: tree,
          hashPart: 'a'.repeat(32),
          narHash: sha256Hash(createHash('sha256').update(narBytes).digest()),
          narSize: narBytes.length,
          references: [],
          signatures: [],
        };
        const stored = await uploadNar(info, {
          store,
          compression,
          compressionLevel: 3,
          compressionThreads: 1,
          computePool: new ComputePool(2, 1024 * 1024),
          signingKey: undefined,
          narMemory: memory,
          // Each read lent: overwrite whatever came back so far, as the next read would.
          dumpNar: (p, lent) =>
            dumpNar(p, lent).on('data', () => {
              reads++;
              for (let i = 0; i < 4; i++) {
                const again = memory.read(memory.readBytes);
                again.fill(0xee);
                memory.giveBack(again);
              }
            }),
        });
        const body = await readFile(join(dir, 'cache', stored.narKey));
        assert.ok((compression === 'zstd' ? zstdDecompressSync(body) : body).equals(narBytes), compression);
      }
      assert.ok(reads > 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
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
