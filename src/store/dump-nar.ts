// The NAR of a path on disk as a byte stream (what `nix-store --dump PATH` writes to stdout).
import { Readable } from 'node:stream';
import { encodeNar, type NarListener, type NarSource } from '../format/nar-writer.js';
import { fsNarSource } from './nar-source-fs.js';

/**
 * Bytes buffered ahead of the consumer. The encoder yields chunks of up to 1 MiB (one file read),
 * so at most about two reads wait in memory however large the path is.
 */
const HIGH_WATER_MARK = 1024 * 1024;

/** @param onEntry sees every node as it is written (a file listing made in the same pass). */
export function dumpNar(path: string, source: NarSource = fsNarSource(), onEntry?: NarListener): Readable {
  return Readable.from(encodeNar(source, Buffer.from(path, 'utf8'), onEntry), {
    objectMode: false,
    highWaterMark: HIGH_WATER_MARK,
  });
}
