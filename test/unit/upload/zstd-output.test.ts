// zstd's compressed output lent from NarMemory (src/upload/zstd-output.ts): the output slabs must be
// reused (node:zlib really writes into them) and never while a piece of them is still on its way to
// the store.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { NarMemory } from '../../../src/chunk-pool.js';
import { sha256Hash } from '../../../src/format/hash.js';
import { dumpNar } from '../../../src/store/dump-nar.js';
import { LocalObjectStore } from '../../../src/storage/local-object-store.js';
import type { PutOptions } from '../../../src/storage/object-store.js';
import { ComputePool } from '../../../src/upload/compute-pool.js';
import { uploadNar } from '../../../src/upload/upload-path.js';
import { closeIdleZstdContexts, takeZstdContext } from '../../../src/upload/zstd-contexts.js';
import { stepOutputBound } from '../../../src/upload/zstd-output.js';
import { framePieces } from '../../helpers/zstd-frame.js';

/**
 * A directory store that, each time it gives a compressed chunk back, takes output slabs from the
 * memory and overwrites them, as the next frame would: a slab reused too early shows in the file.
 */
class OverwritingStore extends LocalObjectStore {
  readonly given = new Set<ArrayBufferLike>();
  reused = 0;

  constructor(
    root: string,
    private readonly memory: NarMemory,
  ) {
    super(root);
  }

  override putStream(key: string, body: Readable, opts: PutOptions): Promise<void> {
    const consumed = opts.consumed;
    return super.putStream(key, body, {
      ...opts,
      consumed: (chunk) => {
        this.given.add(chunk.buffer);
        consumed?.(chunk);
        const slabs = [this.memory.output(), this.memory.output(), this.memory.output()];
        for (const slab of slabs) {
          if (this.given.has(slab.buffer.buffer)) this.reused++;
          slab.buffer.fill(0xee);
          slab.seal();
        }
      },
    });
  }
}

describe('zstd output lent from NarMemory', () => {
  test('a step never produces more than its bound (incompressible input)', () => {
    const step = randomBytes(1024 * 1024);
    assert.ok(zstdCompressSync(step).length <= stepOutputBound(step.length));
  });

  test('the stored NAR is exact while every output slab that comes back is overwritten', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'loft-zstd-output-'));
    try {
      const tree = join(dir, 'tree');
      await mkdir(tree);
      // Random bytes (output as large as the input) and text (small output): both fill slabs.
      await writeFile(join(tree, 'random'), randomBytes(12 * 1024 * 1024 + 77));
      await writeFile(join(tree, 'text'), Buffer.from('loft '.repeat(900_000)));
      const nar: Buffer[] = [];
      for await (const c of dumpNar(tree)) nar.push(c as Buffer);
      const narBytes = Buffer.concat(nar);
      const memory = new NarMemory();
      const store = new OverwritingStore(join(dir, 'cache'), memory);
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
        compression: 'zstd',
        compressionLevel: 3,
        compressionThreads: 2,
        computePool: new ComputePool(2, 2 * 1024 * 1024),
        signingKey: undefined,
        narMemory: memory,
        dumpNar,
      });
      const body = await readFile(join(dir, 'cache', stored.narKey));
      assert.ok(zstdDecompressSync(body).equals(narBytes));
      assert.ok(createHash('sha256').update(body).digest().equals(stored.fileHash));
      // node:zlib wrote into lent slabs, and they came back to be used again.
      assert.ok(store.reused > 0, `no output slab was reused (${store.given.size} buffers given back)`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("an idle context keeps its output slab until it is closed, then the slab is NarMemory's again", async () => {
    closeIdleZstdContexts();
    const memory = new NarMemory();
    const ctx = takeZstdContext(3);
    const input = randomBytes(300 * 1024);
    const pieces = await framePieces(ctx, input, memory.output);
    assert.ok(zstdDecompressSync(Buffer.concat(pieces)).equals(input));
    const slab = pieces[0]!.buffer;
    for (const p of pieces) memory.giveBack(p);
    // The context may write into the rest of its slab with its next frame: not back yet.
    const other = memory.output();
    assert.notEqual(other.buffer.buffer, slab);
    other.seal();
    closeIdleZstdContexts();
    const taken = [memory.output(), memory.output()];
    assert.ok(
      taken.some((s) => s.buffer.buffer === slab),
      'the closed context gave its slab back',
    );
  });
});
