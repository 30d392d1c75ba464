// NarSource over the real filesystem, following what Nix's dumpPath reads: lstat (a symlink is
// stored as a symlink, never followed), raw byte names and targets (a name need not be UTF-8), and
// "executable" meaning the owner-execute bit (S_IXUSR). Large files are read in fixed-size chunks
// from one file handle, one chunk ahead of the consumer, so memory stays constant whatever the size
// and reading overlaps hashing/compressing.
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
import { READ_CHUNKS } from '../chunk-pool.js';
import { CorruptPathError, UnsupportedFileError } from '../errors.js';
import { NAR_COPIED_CHUNK, type NarNode, type NarSource } from '../format/nar-writer.js';

/** Read size for large files: one buffer of the shared pool (src/chunk-pool.ts). */
export const READ_CHUNK = READ_CHUNKS.chunkBytes;
/** Files up to this size are read in one synchronous call. */
export const SMALL_FILE = 64 * 1024;
const SMALL_SLAB = 1024 * 1024;

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

/** Where a small file is read to: readSmall() takes size + 1 bytes and gives the probe byte back. */
interface SmallBuffers {
  take(n: number): Buffer;
  giveBack(n: number): void;
}

/**
 * Hands out small buffers as slices of a larger slab: one ArrayBuffer per 1 MiB instead of one per
 * file keeps the garbage collector out of the way on paths with thousands of small files. A slice
 * is never written again once handed out (the offset only moves forward).
 */
class SlabAllocator implements SmallBuffers {
  private slab = Buffer.allocUnsafe(0);
  private pos = 0;
  constructor(private readonly slabSize: number) {}
  take(n: number): Buffer {
    if (n > this.slab.length - this.pos) {
      this.slab = Buffer.allocUnsafe(Math.max(this.slabSize, n));
      this.pos = 0;
    }
    const b = this.slab.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  /** Returns the unused tail of the last take() (it was one byte of probe room). */
  giveBack(n: number): void {
    this.pos -= n;
  }
}

/**
 * One buffer reused for every file the NAR encoder copies (shorter than NAR_COPIED_CHUNK): the
 * encoder has copied a file's bytes before it asks for the next file, so nothing else can see them
 * being overwritten, and a path of 20,000 small files allocates nothing per file.
 */
class ScratchBuffer implements SmallBuffers {
  private buf = Buffer.allocUnsafeSlow(NAR_COPIED_CHUNK + 1);
  take(n: number): Buffer {
    if (n > this.buf.length) this.buf = Buffer.allocUnsafeSlow(n);
    return this.buf.subarray(0, n);
  }
  giveBack(): void {}
}

/**
 * Reads a small file in one read of size + 1 bytes. On Linux a read of a regular file returns less
 * than asked only at end of file, so getting exactly `size` bytes proves the size still holds; more
 * means the file grew after lstat (Nix would hash different bytes), less that it shrank.
 */
function readSmall(path: Buffer, size: number, alloc: SmallBuffers): Buffer {
  const fd = openSync(path, OPEN_FLAGS);
  try {
    const buf = alloc.take(size + 1);
    let filled = 0;
    for (;;) {
      const n = readSync(fd, buf, filled, size + 1 - filled, filled);
      if (n === 0) break; // end of file
      filled += n;
      if (filled > size) throw changed(path, size, 'grew');
      if (filled === size) break; // a short read: end of file
    }
    if (filled < size) throw changed(path, size, 'shrank');
    alloc.giveBack(1);
    return buf.subarray(0, size);
  } finally {
    closeSync(fd);
  }
}

// eslint-disable-next-line @typescript-eslint/require-await -- an AsyncIterable as NarSource demands
async function* readWhole(path: Buffer, size: number, alloc: SmallBuffers): AsyncGenerator<Buffer> {
  yield readSmall(path, size, alloc);
}

async function readChunk(
  handle: FileHandle,
  path: Buffer,
  offset: number,
  want: number,
  size: number,
): Promise<Buffer> {
  // From the pool when the chunk fits one of its buffers; the compressor gives it back.
  const buf = want <= READ_CHUNKS.chunkBytes ? READ_CHUNKS.take(want) : Buffer.allocUnsafe(want);
  let filled = 0;
  while (filled < want) {
    const { bytesRead } = await handle.read(buf, filled, want - filled, offset + filled);
    if (bytesRead === 0) throw changed(path, size, 'shrank');
    filled += bytesRead;
  }
  return buf;
}

async function* readLarge(path: Buffer, size: number, chunkSize: number): AsyncGenerator<Buffer> {
  const handle = await open(path, OPEN_FLAGS);
  let offset = 0;
  let ahead: Promise<Buffer> | undefined = readChunk(handle, path, 0, Math.min(chunkSize, size), size);
  try {
    while (ahead !== undefined) {
      const buf: Buffer = await ahead;
      offset += buf.length;
      ahead =
        offset < size ? readChunk(handle, path, offset, Math.min(chunkSize, size - offset), size) : undefined;
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
  /** Files up to this many bytes are read synchronously in one go (default 64 KiB). */
  smallFile?: number;
}

export function fsNarSource(opts: FsNarSourceOptions = {}): NarSource {
  const chunkSize = opts.chunkSize ?? READ_CHUNK;
  const smallFile = Math.min(opts.smallFile ?? SMALL_FILE, chunkSize);
  const slab = new SlabAllocator(SMALL_SLAB);
  const scratch = new ScratchBuffer();
  return {
    // eslint-disable-next-line @typescript-eslint/require-await -- async so errors reject, not throw
    async node(path: Buffer): Promise<NarNode> {
      const st = lstatSync(path);
      if (st.isFile()) return { type: 'regular', executable: (st.mode & 0o100) !== 0, size: st.size };
      if (st.isDirectory()) return { type: 'directory' };
      if (st.isSymbolicLink()) return { type: 'symlink', target: readlinkSync(path, { encoding: 'buffer' }) };
      throw new UnsupportedFileError(path.toString('utf8'), kindOf(st) ?? 'file of unknown type');
    },
    // eslint-disable-next-line @typescript-eslint/require-await -- async so errors reject, not throw
    async entries(path: Buffer): Promise<Buffer[]> {
      return readdirSync(path, { encoding: 'buffer' });
    },
    contents(path: Buffer, size: number): AsyncIterable<Buffer> {
      if (size <= smallFile) return readWhole(path, size, size < NAR_COPIED_CHUNK ? scratch : slab);
      return readLarge(path, size, chunkSize);
    },
  };
}
