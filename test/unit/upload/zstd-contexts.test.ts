// Reused zstd contexts (src/upload/zstd-contexts.ts): a frame compressed on a context that has
// already compressed other frames is the same bytes as on a fresh one (resumed multipart uploads
// compare parts byte for byte), decodes on its own, and a context comes back for the next frame
// only when its frame ended cleanly.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, test } from 'node:test';
import zlib from 'node:zlib';
import { NarMemory } from '../../../src/chunk-pool.js';
import {
  closeIdleZstdContexts,
  idleZstdContexts,
  takeZstdContext,
  type ZstdContext,
} from '../../../src/upload/zstd-contexts.js';
import { ComputePool } from '../../../src/upload/compute-pool.js';
import { ZSTD_FRAME_BYTES, ZstdFrameCompressor } from '../../../src/upload/zstd-frames.js';
import { framePieces } from '../../helpers/zstd-frame.js';

/** One frame of `input`, compressed in one step. */
const frame = async (ctx: ZstdContext, input: Buffer): Promise<Buffer> =>
  Buffer.concat(await framePieces(ctx, input));

/**
 * The Frame_Content_Size of the zstd frame at the start of `file` (RFC 8878 section 3.1.1.1), or
 * undefined when its header records none: a frame fed in steps does not know its size when it
 * starts; one compressed in a single step does.
 */
function frameContentSize(file: Buffer): number | undefined {
  assert.equal(file.readUInt32LE(0), 0xfd2fb528, 'a zstd frame');
  const descriptor = file[4]!;
  const fcsFlag = descriptor >> 6;
  const singleSegment = (descriptor >> 5) & 1;
  const dictIdBytes = [0, 1, 2, 4][descriptor & 3]!;
  const at = 5 + (singleSegment ? 0 : 1) + dictIdBytes;
  switch (fcsFlag) {
    case 0:
      return singleSegment ? file[at] : undefined;
    case 1:
      return file.readUInt16LE(at) + 256;
    case 2:
      return file.readUInt32LE(at);
    default:
      return Number(file.readBigUInt64LE(at));
  }
}

const mixed = (n: number): Buffer => Buffer.concat([randomBytes(n), Buffer.alloc(n, 'nix store path ')]);

afterEach(() => closeIdleZstdContexts());

void describe('reused zstd contexts', () => {
  void test('a frame is the same bytes on a used context as on a fresh one, and decodes alone', async () => {
    const a = mixed(3 << 20);
    const b = mixed(700 << 10);
    const fresh = await frame(takeZstdContext(3), a);
    closeIdleZstdContexts();
    const ctx = takeZstdContext(3);
    const first = await frame(ctx, b);
    assert.equal(takeZstdContext(3), ctx, 'the context came back and is taken again');
    const again = await frame(ctx, a);
    assert.ok(again.equals(fresh), 'same bytes after another frame on the context');
    assert.ok(zlib.zstdDecompressSync(first).equals(b));
    assert.ok(zlib.zstdDecompressSync(again).equals(a));
  });

  void test('a frame is compressed in one step: its header records its size', async () => {
    const input = mixed(2 << 20);
    const out = await frame(takeZstdContext(3), input);
    assert.equal(frameContentSize(out), input.length);
  });

  void test('a frame carries no content checksum, as Nix writes none', async () => {
    // Content_Checksum_flag is bit 2 of the Frame_Header_Descriptor (RFC 8878 section 3.1.1.1.1).
    const ctx = takeZstdContext(3);
    for (const input of [mixed(2 << 20), mixed(100), Buffer.alloc(0)]) {
      const out = await frame(ctx, input);
      assert.equal(out[4]! & 0b100, 0, `no checksum flag in a frame of ${input.length} bytes`);
      assert.ok(zlib.zstdDecompressSync(out).equals(input));
    }
  });

  void test('a large NAR is frames of ZSTD_FRAME_BYTES, each compressed in one step', async () => {
    const input = mixed(5 << 20);
    const compressor = new ZstdFrameCompressor(new ComputePool(2), 3);
    const pieces: Buffer[] = [];
    compressor.on('data', (p: Buffer) => pieces.push(p));
    await new Promise<void>((resolve, reject) => {
      compressor.on('end', resolve).on('error', reject);
      for (let at = 0; at < input.length; at += 1 << 20) compressor.write(input.subarray(at, at + (1 << 20)));
      compressor.end();
    });
    const file = Buffer.concat(pieces);
    assert.ok(zlib.zstdDecompressSync(file).equals(input));
    assert.equal(frameContentSize(file), ZSTD_FRAME_BYTES, 'the first frame knew its size');
  });

  void test('a frame compressed into a lent slab goes downstream in pieces of at most 1 MiB', async () => {
    const memory = new NarMemory();
    const input = randomBytes(4 << 20);
    const ctx = takeZstdContext(3);
    const pieces = await framePieces(ctx, input, memory.output);
    assert.ok(zlib.zstdDecompressSync(Buffer.concat(pieces)).equals(input));
    assert.ok(pieces.length >= 4, `${pieces.length} pieces`);
    for (const p of pieces) assert.ok(p.length <= 1 << 20, `a piece of ${p.length} bytes`);
    for (const p of pieces) memory.giveBack(p);
  });

  void test('an empty frame is a valid empty zstd frame', async () => {
    const out = await frame(takeZstdContext(3), Buffer.alloc(0));
    assert.ok(out.length > 0);
    assert.equal(zlib.zstdDecompressSync(out).length, 0);
  });

  void test('levels keep their own contexts; idle ones are closed on request', async () => {
    await frame(takeZstdContext(3), mixed(1000));
    await frame(takeZstdContext(19), mixed(1000));
    assert.equal(idleZstdContexts(), 2);
    const c3 = takeZstdContext(3);
    assert.equal(idleZstdContexts(), 1);
    assert.equal(c3.level, 3);
    closeIdleZstdContexts();
    assert.equal(idleZstdContexts(), 0);
  });

  void test('a frame stopped before its input is complete fails its sink; its context is not reused', async () => {
    const ctx = takeZstdContext(3);
    const failed = new Promise<Error | null>((resolve) =>
      ctx.start({ piece: () => undefined, done: (err) => resolve(err) }),
    );
    ctx.destroy(new Error('stopped'));
    assert.match(String(await failed), /stopped/);
    assert.equal(idleZstdContexts(), 0);
    assert.notEqual(takeZstdContext(3), ctx);
  });
});

/** Compresses `input` through a ZstdFrameCompressor on `pool`; resolves with the whole file. */
async function compressAll(pool: ComputePool, input: Buffer): Promise<Buffer> {
  const compressor = new ZstdFrameCompressor(pool, 3);
  const pieces: Buffer[] = [];
  compressor.on('data', (p: Buffer) => pieces.push(p));
  const ended = new Promise<void>((resolve, reject) => compressor.on('end', resolve).on('error', reject));
  compressor.end(input);
  await ended;
  return Buffer.concat(pieces);
}

// Every small frame used to take a context of its own at once: twelve uploads of small NARs held
// ten contexts (and the output slab each one pins) at the peak of the bench closure.
void describe('small frames take turns', () => {
  void test('small frames ending together compress one per thread, on as many contexts', async () => {
    closeIdleZstdContexts();
    const pool = new ComputePool(1);
    const inputs = [1, 2, 3, 4].map((n) => mixed(n * 10_000));
    const files = await Promise.all(inputs.map((input) => compressAll(pool, input)));
    files.forEach((file, i) => assert.ok(zlib.zstdDecompressSync(file).equals(inputs[i]!)));
    assert.equal(idleZstdContexts(), 1, 'one context served every small frame in turn');
  });

  void test('a compressor destroyed while it waits for its turn does not keep the turn', async () => {
    const pool = new ComputePool(1);
    const endHeld = await pool.smallFrameTurn();
    const waiting = new ZstdFrameCompressor(pool, 3);
    waiting.on('error', () => undefined);
    waiting.end(mixed(1000));
    await new Promise((resolve) => setImmediate(resolve));
    waiting.destroy();
    endHeld();
    const input = mixed(2000);
    const file = await Promise.race([
      compressAll(pool, input),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no turn left')), 2000)),
    ]);
    assert.ok(zlib.zstdDecompressSync(file).equals(input));
  });
});

// Large frames fill in one more slot than there are threads and compress in turns: the NAR's hash
// is taken as each frame starts compressing, and a frame still waiting for its turn when the
// upload stops gives back its slot and never takes a turn.
void describe('large frames take compression turns', () => {
  void test('the input hash hears every byte once, in order, across small and large frames', async () => {
    // Two full frames of 4 MiB (each hashed once its compression starts) and a tail.
    const pool = new ComputePool(1);
    const input = Buffer.concat([mixed(3_000_000), randomBytes(2_500_000), mixed(33_333)]);
    const seen = createHash('sha256');
    let bytes = 0;
    const compressor = new ZstdFrameCompressor(pool, 3, {
      inputHash: { update: (b) => (seen.update(b), (bytes += b.length)) },
    });
    const pieces: Buffer[] = [];
    compressor.on('data', (p: Buffer) => pieces.push(p));
    const ended = new Promise<void>((resolve, reject) => compressor.on('end', resolve).on('error', reject));
    // In uneven chunks, as a NAR reader yields them.
    for (let at = 0; at < input.length; at += 500_001) compressor.write(input.subarray(at, at + 500_001));
    compressor.end();
    await ended;
    assert.equal(bytes, input.length);
    assert.ok(seen.digest().equals(createHash('sha256').update(input).digest()));
    assert.ok(zlib.zstdDecompressSync(Buffer.concat(pieces)).equals(input));
  });

  void test('destroyed while one frame waits for a turn and one fills: both slots and the turn come back', async () => {
    const frameBytes = ZSTD_FRAME_BYTES; // frames below 1 MiB never take a slot
    const pool = new ComputePool(1, frameBytes);
    const endHeld = await pool.compressTurn();
    const stopped = new ZstdFrameCompressor(pool, 3);
    stopped.on('error', () => undefined);
    // One full frame waiting for the turn and one half-filled: both slots (one thread, one ahead).
    stopped.write(randomBytes(frameBytes + frameBytes / 2));
    await new Promise((resolve) => setImmediate(resolve));
    stopped.destroy();
    endHeld();
    const within = <T>(p: Promise<T>, what: string): Promise<T> =>
      Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(what)), 2000))]);
    const slots = await within(Promise.all([pool.acquire(), pool.acquire()]), 'a slot was kept');
    const endTurn = await within(pool.compressTurn(), 'the turn was kept');
    endTurn();
    for (const slot of slots) slot.release();
    const input = mixed(frameBytes + 5);
    assert.ok(zlib.zstdDecompressSync(await compressAll(pool, input)).equals(input));
  });
});
