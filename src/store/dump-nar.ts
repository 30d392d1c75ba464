// The NAR of a path on disk as a byte stream (what `nix-store --dump PATH` writes to stdout).
import { Readable } from 'node:stream';
import type { NarMemory } from '../chunk-pool.js';
import { encodeNar, type NarListener } from '../format/nar-writer.js';
import { fsNarSource } from './nar-source-fs.js';

/**
 * Bytes buffered ahead of the consumer. The encoder yields chunks of up to 1 MiB (one file read),
 * so at most about two reads wait in memory however large the path is.
 */
const HIGH_WATER_MARK = 1024 * 1024;

/**
 * @param memory lends the stream's chunks (src/chunk-pool.ts): only for a consumer that reports
 *   each chunk back to it once copied; without it every chunk is fresh memory.
 * @param onEntry sees every node as it is written (a file listing made in the same pass).
 */
export function dumpNar(path: string, memory?: NarMemory, onEntry?: NarListener): Readable {
  const source = fsNarSource(memory ? { memory } : {});
  return Readable.from(encodeNar(source, Buffer.from(path, 'utf8'), onEntry), {
    objectMode: false,
    highWaterMark: HIGH_WATER_MARK,
  });
}
