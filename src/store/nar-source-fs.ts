// NarSource over the real filesystem, following what Nix's dumpPath reads: lstat (a symlink is
// stored as a symlink, never followed), raw byte names and targets (a name need not be UTF-8), and
// "executable" meaning the owner-execute bit (S_IXUSR). Large files are read in fixed-size chunks
// from one file handle, one chunk ahead of the consumer, so memory stays constant whatever the size
// and reading overlaps hashing/compressing. Given a NarMemory (src/chunk-pool.ts), the reads and
// the encoder's slabs are lent from it; otherwise every chunk is fresh memory.
//
// Metadata and small files use synchronous calls on purpose: every fs.promises call is a thread-pool
// round trip of tens of microseconds, and a store path with 20,000 small files would spend seconds
// in them, against microseconds for the synchronous calls on a local /nix/store.
import {
  closeSync,
  constants,
  lstatSync,
  openSync,
  readSync,
  readdirSync,
  readlinkSync,
  type Stats,
} from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { NarMemory } from '../chunk-pool.js';
import { CorruptPathError, UnsupportedFileError } from '../errors.js';
import { NAR_COPIED_CHUNK, type NarNode, type NarSource, type NarSyncSource } from '../format/nar-writer.js';

/** Read size for large files: one read buffer of NarMemory. */
export const READ_CHUNK = 1024 * 1024;

function kindOf(st: Stats): string | undefined {
  if (st.isSocket()) return 'socket';
  if (st.isFIFO()) return 'FIFO';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  return undefined;
}

function changed(path: Buffer, size: number, how: string): CorruptPathError {
  const p = path.toString('utf8');
  return new CorruptPathError(
    p,
    `file ${p} ${how} while being read (expected ${size} bytes): it was modified; try again`,
  );
}

/** O_NOFOLLOW: a file swapped for a symlink since lstat fails instead of being followed;
 * O_NONBLOCK: one swapped for a FIFO fails instead of blocking the open. */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * One buffer reused for every file the NAR encoder copies (shorter than NAR_COPIED_CHUNK): the
 * encoder has copied a file's bytes before it asks for the next file, so nothing else can see them
 * being overwritten, and a path of 20,000 small files allocates nothing per file.
 */
class ScratchBuffer {
  private readonly buf = Buffer.allocUnsafeSlow(NAR_COPIED_CHUNK + 1);
  /** Room for a file shorter than NAR_COPIED_CHUNK and its probe byte. */
  take(n: number): Buffer {
    return this.buf.subarray(0, n);
  }
}

/**
 * Reads a small file in one read of size + 1 bytes. On Linux a read of a regular file returns less
 * than asked only at end of file, so getting exactly `size` bytes proves the size still holds; more
 * means the file grew after lstat (Nix would hash different bytes), less that it shrank.
 */
function readSmall(path: Buffer, size: number, scratch: ScratchBuffer): Buffer {
  const fd = openSync(path, OPEN_FLAGS);
  try {
    const buf = scratch.take(size + 1);
    let filled = 0;
    for (;;) {
      const n = readSync(fd, buf, filled, size + 1 - filled, filled);
      if (n === 0) break; // end of file
      filled += n;
      if (filled > size) throw changed(path, size, 'grew');
      if (filled === size) break; // a short read: end of file
    }
    if (filled < size) throw changed(path, size, 'shrank');
    return buf.subarray(0, size);
  } finally {
    closeSync(fd);
  }
}

// eslint-disable-next-line @typescript-eslint/require-await -- an AsyncIterable as NarSource demands
async function* readWhole(path: Buffer, size: number, scratch: ScratchBuffer): AsyncGenerator<Buffer> {
  yield readSmall(path, size, scratch);
}

async function readChunk(
  handle: FileHandle,
  path: Buffer,
  offset: number,
  want: number,
  size: number,
  memory: NarMemory | undefined,
): Promise<Buffer> {
  // Lent when it fits a read buffer; the upload path gives it back once the compressor copied it.
  const buf = memory && want <= memory.readBytes ? memory.read(want) : Buffer.allocUnsafe(want);
  let filled = 0;
  while (filled < want) {
    const { bytesRead } = await handle.read(buf, filled, want - filled, offset + filled);
    if (bytesRead === 0) throw changed(path, size, 'shrank');
    filled += bytesRead;
  }
  return buf;
}

async function* readLarge(
  path: Buffer,
  size: number,
  chunkSize: number,
  memory: NarMemory | undefined,
): AsyncGenerator<Buffer> {
  const handle = await open(path, OPEN_FLAGS);
  let offset = 0;
  const read = (at: number) => readChunk(handle, path, at, Math.min(chunkSize, size - at), size, memory);
  let ahead: Promise<Buffer> | undefined = read(0);
  try {
    while (ahead !== undefined) {
      const buf: Buffer = await ahead;
      offset += buf.length;
      ahead = offset < size ? read(offset) : undefined;
      yield buf;
    }
    const probe = Buffer.allocUnsafe(1);
    if ((await handle.read(probe, 0, 1, size)).bytesRead !== 0) throw changed(path, size, 'grew');
  } finally {
    // The consumer may stop early (error, abort); never close the handle under a read in flight.
    await ahead?.catch(() => undefined);
    await handle.close();
  }
}

export interface FsNarSourceOptions {
  /** Bytes per read of a large file (default 1 MiB). */
  chunkSize?: number;
  /** Where reads and the encoder's slabs come from; without it, fresh memory. */
  memory?: NarMemory;
}

function nodeSync(path: Buffer): NarNode {
  const st = lstatSync(path);
  if (st.isFile()) return { type: 'regular', executable: (st.mode & 0o100) !== 0, size: st.size };
  if (st.isDirectory()) return { type: 'directory' };
  if (st.isSymbolicLink()) return { type: 'symlink', target: readlinkSync(path, { encoding: 'buffer' }) };
  throw new UnsupportedFileError(path.toString('utf8'), kindOf(st) ?? 'file of unknown type');
}

function entriesSync(path: Buffer): Buffer[] {
  return readdirSync(path, { encoding: 'buffer' });
}

/** One byte past a file's end, read to prove it has not grown. */
const PROBE = Buffer.allocUnsafeSlow(1);

/**
 * Reads a whole file of `size` bytes into `into` at `at`, then proves its end: a read past it must
 * find nothing. Every file, small or large, is one open and as few reads as the kernel needs.
 */
function readInto(path: Buffer, size: number, into: Buffer, at: number): void {
  const fd = openSync(path, OPEN_FLAGS);
  try {
    let filled = 0;
    while (filled < size) {
      const n = readSync(fd, into, at + filled, size - filled, filled);
      if (n === 0) throw changed(path, size, 'shrank');
      filled += n;
    }
    if (readSync(fd, PROBE, 0, 1, size) !== 0) throw changed(path, size, 'grew');
  } finally {
    closeSync(fd);
  }
}

/** The file system for the synchronous encoder (format/nar-writer.ts, encodeNarSync). */
export function fsNarSyncSource(): NarSyncSource {
  return { nodeSync, entriesSync, readInto };
}

export function fsNarSource(opts: FsNarSourceOptions = {}): NarSource {
  const chunkSize = opts.chunkSize ?? READ_CHUNK;
  const { memory } = opts;
  // Files the encoder copies are read in one synchronous call into one scratch buffer.
  const smallFile = Math.min(NAR_COPIED_CHUNK - 1, chunkSize);
  const scratch = new ScratchBuffer();
  return {
    // eslint-disable-next-line @typescript-eslint/require-await -- async so errors reject, not throw
    async node(path: Buffer): Promise<NarNode> {
      return nodeSync(path);
    },
    // eslint-disable-next-line @typescript-eslint/require-await -- async so errors reject, not throw
    async entries(path: Buffer): Promise<Buffer[]> {
      return entriesSync(path);
    },
    contents(path: Buffer, size: number): AsyncIterable<Buffer> {
      if (size <= smallFile) return readWhole(path, size, scratch);
      return readLarge(path, size, chunkSize, memory);
    },
    nodeSync,
    entriesSync,
    smallSync: (path, size) => (size <= smallFile ? readSmall(path, size, scratch) : undefined),
    ...(memory ? { slab: () => memory.slab() } : {}),
  };
}
