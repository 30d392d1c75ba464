// Compressor behaviour that does not need an outside decoder: names, option checks, backpressure
// and error propagation. Round trips through the zstd and xz CLIs are in
// test/integration/compression-tools.test.ts.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { zstdDecompressSync } from 'node:zlib';
import { setTimeout as sleep } from 'node:timers/promises';
import { narExtension, narinfoCompressionName, type Compression } from '../../../src/format/bucket-layout.js';
import { createCompressor, wholeCompressor } from '../../../src/upload/compression.js';
import { ConfigError } from '../../../src/errors.js';
import { ZSTD_FRAME_BYTES } from '../../../src/upload/zstd-frames.js';

const MiB = 1024 * 1024;

/** Fresh random bytes (incompressible, so output size tracks input size), counting what was pulled. */
class CountingSource extends Readable {
  pulled = 0;
  constructor(private readonly total: number) {
    super({ highWaterMark: 64 * 1024 });
  }
  override _read(): void {
    const n = Math.min(64 * 1024, this.total - this.pulled);
    if (n <= 0) {
      this.push(null);
      return;
    }
    this.pulled += n;
    this.push(randomBytes(n));
  }
}

/** A consumer that takes nothing until released, then takes one chunk a millisecond. */
class StallingSink extends Writable {
  received = 0;
  private held: (() => void) | undefined;
  private released = false;
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.received += chunk.length;
    if (this.released) setTimeout(cb, 1);
    else this.held = cb;
  }
  release(): void {
    this.released = true;
    this.held?.();
  }
}

/** Waits until `source.pulled` stops moving for half a second, or passes `limit`. */
async function pulledWhileStalled(source: CountingSource, limit: number): Promise<number> {
  let last = -1;
  let still = 0;
  for (let i = 0; i < 200 && still < 5 && source.pulled <= limit; i++) {
    await sleep(100);
    still = source.pulled === last ? still + 1 : 0;
    last = source.pulled;
  }
  return source.pulled;
}

async function checkBackpressure(compressor: Transform, total: number, stallLimit: number): Promise<number> {
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const source = new CountingSource(total);
  const sink = new StallingSink();
  const done = pipeline(source, compressor, sink);
  const pulled = await pulledWhileStalled(source, stallLimit);
  assert.ok(pulled < stallLimit, `pulled ${pulled} bytes while the consumer took nothing`);
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }, 20);
  try {
    sink.release();
    await done;
  } finally {
    clearInterval(sampler);
  }
  assert.equal(source.pulled, total);
  assert.ok(sink.received >= total, 'random input does not shrink');
  return rssPeak - rssBefore;
}

void describe('whole small bodies (wholeCompressor)', () => {
  void test('zstd and none round-trip in one call; xz has no such form', () => {
    const body = Buffer.from('a small NAR '.repeat(100));
    const zstd = wholeCompressor('zstd', 3)!;
    assert.ok(zstd(body).length < body.length);
    assert.deepEqual(zstdDecompressSync(zstd(body)), body);
    assert.deepEqual(wholeCompressor('none')!(body), body);
    assert.equal(wholeCompressor('xz', 6), undefined);
    assert.throws(() => wholeCompressor('zstd', 99), ConfigError);
  });
});

void describe('names', () => {
  void test('extensions and narinfo names follow Nix', () => {
    const names: Array<[Compression, string, string]> = [
      ['zstd', 'nar.zst', 'zstd'],
      ['xz', 'nar.xz', 'xz'],
      ['none', 'nar', 'none'],
    ];
    for (const [kind, ext, name] of names) {
      assert.equal(narExtension(kind), ext);
      assert.equal(narinfoCompressionName(kind), name);
    }
  });
});

void describe('options', () => {
  void test('bad levels and thread counts are ConfigErrors', () => {
    assert.throws(() => createCompressor('zstd', { level: 0 }), ConfigError);
    assert.throws(() => createCompressor('zstd', { level: 23 }), ConfigError);
    assert.throws(() => createCompressor('zstd', { level: 2.5 }), ConfigError);
    assert.throws(() => createCompressor('xz', { level: 10 }), ConfigError);
    assert.throws(() => createCompressor('xz', { level: -1 }), ConfigError);
    assert.throws(() => createCompressor('zstd', { threads: 0 }), ConfigError);
    assert.throws(() => createCompressor('xz', { threads: 1.5 }), /threads/);
  });

  void test('none passes bytes through unchanged', async () => {
    const data = randomBytes(3 * MiB + 5);
    const chunks: Buffer[] = [];
    await pipeline(
      Readable.from([data.subarray(0, 7), data.subarray(7)]),
      createCompressor('none', {}),
      async (s) => {
        for await (const c of s as AsyncIterable<Buffer>) chunks.push(c);
      },
    );
    assert.ok(Buffer.concat(chunks).equals(data));
  });
});

void describe('backpressure', () => {
  void test('zstd: a stalled consumer stops the source; 200 MiB keep RSS bounded', async () => {
    // What may be held: one frame per pool thread, plus the output already handed on.
    const held = (2 + 1) * ZSTD_FRAME_BYTES + 4 * MiB;
    const growth = await checkBackpressure(createCompressor('zstd', { threads: 2 }), 200 * MiB, held);
    // Without backpressure most of the 200 MiB of compressed output would pile up in memory. With
    // it: per thread a 16 MiB input buffer and up to 16 MiB of output, plus the frame handed on
    // and garbage not yet collected (132 MiB seen once on a loaded machine).
    const bound = 2 * 2 * ZSTD_FRAME_BYTES + ZSTD_FRAME_BYTES + 80 * MiB;
    assert.ok(growth < bound, `RSS grew by ${Math.round(growth / MiB)} MiB`);
  });

  void test('xz: a stalled consumer stops the source', async () => {
    // Preset 0 keeps xz's blocks (1 MiB) and the run time small; the stream logic is the same.
    await checkBackpressure(createCompressor('xz', { level: 0, threads: 2 }), 32 * MiB, 16 * MiB);
  });
});

void describe('errors', () => {
  for (const kind of ['zstd', 'xz', 'none'] as const) {
    void test(`${kind}: a source failing mid-way destroys the compressor with its error`, async () => {
      const boom = new Error('source broke');
      async function* failing(): AsyncGenerator<Buffer> {
        for (let i = 0; i < 3; i++) {
          await sleep(1);
          yield randomBytes(MiB);
        }
        throw boom;
      }
      const compressor = createCompressor(kind, {});
      const sink = new Writable({ write: (_c, _e, cb) => cb() });
      await assert.rejects(pipeline(Readable.from(failing()), compressor, sink), boom);
      assert.equal(compressor.destroyed, true);
      assert.equal(compressor.errored, boom);
      await sleep(300); // a late event from a native thread must not surface as an uncaught error
    });

    void test(`${kind}: a failing consumer destroys the compressor`, async () => {
      const boom = new Error('upload failed');
      const compressor = createCompressor(kind, {});
      const sink = new Writable({ write: (_c, _e, cb) => cb(boom) });
      await assert.rejects(pipeline(new CountingSource(8 * MiB), compressor, sink), boom);
      assert.equal(compressor.destroyed, true);
      await sleep(300);
    });
  }
});
