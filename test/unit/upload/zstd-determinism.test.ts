// Resuming a multipart upload after a crash (upload/resumable-nar.ts) relies on zstd producing the
// same bytes for the same NAR and level: frames are cut at fixed input offsets and compressed on
// libuv's thread pool in fixed 1 MiB steps, so neither the number of compute threads nor how the
// input arrives may change the output.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import { createCompressor } from '../../../src/upload/compression.js';
import { ComputePool } from '../../../src/upload/compute-pool.js';

async function compressed(input: Buffer, chunk: number, threads: number): Promise<string> {
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  for (let at = 0; at < input.length; at += chunk) chunks.push(Buffer.from(input.subarray(at, at + chunk)));
  await pipeline(
    Readable.from(chunks),
    createCompressor('zstd', { level: 3, pool: new ComputePool(threads) }),
    async (source: AsyncIterable<Buffer>) => {
      for await (const c of source) hash.update(c);
    },
  );
  return hash.digest('hex');
}

describe('zstd frames are deterministic', () => {
  test('same input and level: same bytes, whatever the threads and the input chunking', async () => {
    // Half random, half repetitive: both incompressible and compressible frames, 40 MiB = 3 frames.
    const input = Buffer.concat([randomBytes(20 << 20), Buffer.alloc(20 << 20, 'nix store ')]);
    const a = await compressed(input, 1 << 20, 2);
    assert.equal(await compressed(input, 64 << 10, 1), a);
    assert.equal(await compressed(input, 3_000_001, 4), a);
  });
});
