// Reused zstd contexts (src/upload/zstd-contexts.ts): a frame compressed on a context that has
// already compressed other frames is the same bytes as on a fresh one (resumed multipart uploads
// compare parts byte for byte), decodes on its own, and a context comes back for the next frame
// only when its frame ended cleanly.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, test } from 'node:test';
import zlib from 'node:zlib';
import {
  closeIdleZstdContexts,
  idleZstdContexts,
  takeZstdContext,
  type ZstdContext,
} from '../../../src/upload/zstd-contexts.js';

/** One frame of `input`, fed in `step`-byte writes. */
function frame(ctx: ZstdContext, input: Buffer, step = 1 << 20): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const pieces: Buffer[] = [];
    ctx.start({
      piece: (p) => pieces.push(p),
      done: (err) => (err ? reject(err) : resolve(Buffer.concat(pieces))),
    });
    let at = 0;
    const next = (): void => {
      const piece = input.subarray(at, at + step);
      at += piece.length;
      if (at >= input.length) return ctx.end(piece);
      ctx.write(piece, (err) => (err ? reject(err) : next()));
    };
    next();
  });
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
    const first = await frame(ctx, b, 64 << 10);
    assert.equal(takeZstdContext(3), ctx, 'the context came back and is taken again');
    const again = await frame(ctx, a);
    assert.ok(again.equals(fresh), 'same bytes after another frame on the context');
    assert.ok(zlib.zstdDecompressSync(first).equals(b));
    assert.ok(zlib.zstdDecompressSync(again).equals(a));
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

  void test('a frame stopped part-way fails its sink and its context is not reused', async () => {
    const ctx = takeZstdContext(3);
    const failed = new Promise<Error | null>((resolve) =>
      ctx.start({ piece: () => undefined, done: (err) => resolve(err) }),
    );
    await new Promise<void>((resolve, reject) =>
      ctx.write(mixed(100 << 10), (err) => (err ? reject(err) : resolve())),
    );
    ctx.destroy(new Error('stopped'));
    assert.match(String(await failed), /stopped/);
    assert.equal(idleZstdContexts(), 0);
    assert.notEqual(takeZstdContext(3), ctx);
  });
});
