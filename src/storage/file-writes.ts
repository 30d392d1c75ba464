// Writing a compressed NAR's pieces into a file of the local store, in steps of at most
// WRITE_STEP_BYTES per write call.
//
// Why steps: the kernel's cost of copying written bytes into the page cache depends on the size of
// each write call. Measured on the development machine (Linux 6.18, ext4, a virtual machine;
// 1.9 GB written in 60 files, each fsynced, the same buffer written again and again, system CPU
// seconds of the writing process): writes of 128-512 KiB 0.62-1.13 s, of 1 MiB 2.00-3.12 s, of
// 2 MiB 3.82-4.11 s, of 4 MiB 4.64-5.25 s. A large write makes ext4 take large page-cache folios,
// and on this machine those come with a slow first touch (`copy_folio_from_iter_atomic` under
// `ksys_write`: 450-780 perf samples per bench closure for loft against 132 for `nix copy`, whose
// file store writes in steps of 64-128 KiB). A writev of queued 1 MiB pieces is one such large
// write, as is one piece of up to 1 MiB. Each step is one more trip to libuv's pool, about 2,400
// of them for the bench closure's 600 MB of compressed output (docs/architecture.md, "Writes in
// steps").
import type * as fs from 'node:fs/promises';
import { Writable } from 'node:stream';

/** The most one write call passes to the kernel. */
export const WRITE_STEP_BYTES = 256 * 1024;

/** The calls of a FileHandle the writer makes. */
export type WriteHandle = Pick<fs.FileHandle, 'write'>;

/**
 * A Writable over an open file that reports each chunk once written (PutOptions.consumed): the
 * compressor's output is lent memory (src/chunk-pool.ts) that comes back here. Chunks queued
 * meanwhile are written in order, each in steps of at most WRITE_STEP_BYTES.
 */
export function fileWriter(
  handle: WriteHandle,
  consumed: ((chunk: Buffer) => void) | undefined,
): Writable & { bytes: number } {
  const out = new Writable({
    writev(chunks, callback) {
      const buffers = chunks.map((c) => c.chunk as Buffer);
      writeAll(handle, buffers).then(() => {
        for (const b of buffers) {
          out.bytes += b.length;
          consumed?.(b);
        }
        callback();
      }, callback);
    },
  }) as Writable & { bytes: number };
  out.bytes = 0;
  return out;
}

/** Writes every byte of `buffers` in order, however the kernel splits the writes. */
export async function writeAll(handle: WriteHandle, buffers: Buffer[]): Promise<void> {
  for (const buffer of buffers) {
    let at = 0;
    while (at < buffer.length) {
      const length = Math.min(WRITE_STEP_BYTES, buffer.length - at);
      at += (await handle.write(buffer, at, length)).bytesWritten;
    }
  }
}
