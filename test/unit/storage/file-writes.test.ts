import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileWriter, WRITE_STEP_BYTES, type WriteHandle } from '../../../src/storage/file-writes.js';

// Large write calls cost the kernel several times the CPU of small ones to copy into the page
// cache (src/storage/file-writes.ts): every call the writer makes passes at most one step, to a
// real file, and the file holds every byte in order.
test('compressed pieces reach the file in write calls of at most one step each, in order', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'loft-file-writes-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const handle = await open(join(dir, 'nar'), 'w');
  const lengths: number[] = [];
  const recording: WriteHandle = {
    write: ((buffer: Buffer, offset: number, length: number) => {
      lengths.push(length);
      return handle.write(buffer, offset, length);
    }) as WriteHandle['write'],
  };
  // Pieces as the zstd compressor lends them (up to 1 MiB), and odd sizes around a step.
  const pieces = [1024 * 1024, WRITE_STEP_BYTES + 1, 3, WRITE_STEP_BYTES, 2.5 * 1024 * 1024].map((n, i) =>
    Buffer.alloc(n, i + 1),
  );
  const consumed: Buffer[] = [];
  const out = fileWriter(recording, (b) => consumed.push(b));
  await pipeline(Readable.from(pieces), out);
  await handle.close();

  assert.ok(lengths.length > 0);
  assert.ok(
    lengths.every((n) => n <= WRITE_STEP_BYTES),
    `largest write ${Math.max(...lengths)} bytes, more than a step`,
  );
  assert.deepEqual(readFileSync(join(dir, 'nar')), Buffer.concat(pieces));
  assert.equal(out.bytes, Buffer.concat(pieces).length);
  assert.deepEqual(consumed, pieces, 'each piece reported once, after it was written');
});
