// ObjectStore over a local directory with the same layout as a bucket, so the directory can be
// served over HTTP or read by Nix as `file://<dir>`. Like Nix's LocalBinaryCacheStore, a file
// appears under its final name only once complete: it is written to a temporary file inside the
// root (same file system), flushed, then renamed into place.
import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AbortedError, StorageError } from '../errors.js';
import type { BeforeDelete, ObjectInfo, ObjectStore, PutOptions } from './object-store.js';

/** Temporary files live here, inside the root; list() never enters it. */
export const LOCAL_TEMP_DIR = '.loft-tmp';

export class LocalObjectStore implements ObjectStore {
  readonly description: string;
  private readonly root: string;
  private readonly tempDir: string;
  /** Directories this store has made (or found), so each file's write does not ask again. */
  private readonly madeDirs = new Set<string>();
  /**
   * Temporary names: random per store, then counted. Unique against other processes writing the
   * same directory, without drawing random bytes for every file.
   */
  private readonly tempPrefix = randomBytes(8).toString('hex');
  private temps = 0;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.tempDir = path.join(this.root, LOCAL_TEMP_DIR);
    this.description = `directory ${this.root}`;
  }

  /** A body goes to its file as it comes: nothing beyond the write stream's own small buffer. */
  bufferedPerUpload(): number {
    return 0;
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const st = await fs.stat(this.pathOf(key));
      return st.isFile() ? { key, size: st.size, lastModified: st.mtime } : undefined;
    } catch (err) {
      if (isAbsent(err)) return undefined;
      throw this.fail(`read ${key}`, err);
    }
  }

  async get(key: string): Promise<Buffer | undefined> {
    try {
      return await fs.readFile(this.pathOf(key));
    } catch (err) {
      if (isAbsent(err) || errnoOf(err) === 'EISDIR') return undefined;
      throw this.fail(`read ${key}`, err);
    }
  }

  async getStream(key: string): Promise<Readable | undefined> {
    const file = this.pathOf(key);
    try {
      // Opened here, so a missing file is answered now rather than as a stream error later.
      const handle = await fs.open(file, 'r');
      if (!(await handle.stat()).isFile()) {
        await handle.close();
        return undefined;
      }
      return handle.createReadStream();
    } catch (err) {
      if (isAbsent(err) || errnoOf(err) === 'EISDIR') return undefined;
      throw this.fail(`read ${key}`, err);
    }
  }

  async putBytes(key: string, body: Buffer | string, opts: PutOptions): Promise<void> {
    if (opts.signal?.aborted) throw new AbortedError(`write of ${key} was cancelled`);
    await this.writeAtomically(key, (handle) => handle.writeFile(body));
  }

  async putStream(key: string, body: Readable, opts: PutOptions): Promise<void> {
    let bodyError: unknown;
    body.once('error', (err) => (bodyError ??= err));
    const onAbort = () => body.destroy(new AbortedError(`write of ${key} was cancelled`));
    if (opts.signal?.aborted) onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      let written = 0;
      await this.writeAtomically(key, async (handle) => {
        const out = fileWriter(handle, opts.consumed);
        await pipeline(body, out);
        written = out.bytes;
      });
      // Stored once synced and renamed into place, as a reader sees it.
      opts.onStored?.(written);
    } catch (err) {
      // The body's own failure (NAR or compression error, cancellation) is the one to report. Since
      // Node 22, pipeline() destroys the body with the file's error (ENOSPC...) too: that one is
      // the write's failure, already classified in `err`.
      const fromWrite = bodyError === err || (err instanceof Error && err.cause === bodyError);
      const failure = bodyError !== undefined && !fromWrite ? bodyError : err;
      body.destroy(failure instanceof Error ? failure : undefined);
      throw failure;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    yield* this.walk('', prefix);
  }

  /** One "request" for the whole list: a directory has no limit. */
  async deleteMany(keys: string[], _signal?: AbortSignal, beforeRequest?: BeforeDelete): Promise<void> {
    if (keys.length > 0 && beforeRequest && !beforeRequest(keys.length)) return;
    for (const key of keys) {
      try {
        await fs.unlink(this.pathOf(key));
      } catch (err) {
        if (!isAbsent(err)) throw this.fail(`delete ${key}`, err);
      }
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Keys are relative slash-separated paths; anything that could leave the root is refused. */
  private pathOf(key: string): string {
    const parts = key.split('/');
    const bad =
      key === '' ||
      parts.some((p) => p === '' || p === '.' || p === '..') ||
      parts[0] === LOCAL_TEMP_DIR ||
      key.includes('\0');
    if (bad) throw new StorageError(`"${key}" is not a valid object key for ${this.description}`);
    return path.join(this.root, ...parts);
  }

  /**
   * Writes a file under `key` as Nix's file:// store does, into a temporary file renamed into place
   * once complete, and flushes it to disk before the rename, which Nix does not: after a crash, no
   * narinfo names a NAR whose bytes never reached the disk. `write` fills the open temporary file.
   */
  private async writeAtomically(key: string, write: (handle: fs.FileHandle) => Promise<void>): Promise<void> {
    const final = this.pathOf(key);
    const temp = path.join(this.tempDir, `.tmp-${this.tempPrefix}-${++this.temps}`);
    try {
      const handle = await this.inDir(this.tempDir, () => fs.open(temp, 'w'));
      try {
        await write(handle);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await this.inDir(path.dirname(final), () => fs.rename(temp, final));
    } catch (err) {
      await fs.rm(temp, { force: true }).catch(() => undefined);
      if (err instanceof AbortedError || isNotFsError(err)) throw err;
      throw this.fail(`write ${key}`, err);
    }
  }

  /**
   * Runs `create`, which makes an entry in `dir`, making `dir` first the first time this store
   * writes there. A directory is made once per store, not once per file: two mkdir calls per
   * file were two thread-pool round trips each for every NAR, narinfo and log. One removed since
   * (someone cleaning the cache by hand) is made again and the entry created once more.
   */
  private async inDir<T>(dir: string, create: () => Promise<T>): Promise<T> {
    if (!this.madeDirs.has(dir)) {
      await fs.mkdir(dir, { recursive: true });
      this.madeDirs.add(dir);
    }
    try {
      return await create();
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw err;
      await fs.mkdir(dir, { recursive: true });
      return await create();
    }
  }

  private async *walk(dir: string, prefix: string): AsyncGenerator<ObjectInfo> {
    let entries: Dirent[];
    try {
      entries = await fs.readdir(path.join(this.root, dir), { withFileTypes: true });
    } catch (err) {
      if (isAbsent(err)) return;
      throw this.fail('list', err);
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const key = dir === '' ? entry.name : `${dir}/${entry.name}`;
      if (dir === '' && entry.name === LOCAL_TEMP_DIR) continue;
      if (entry.isDirectory()) {
        // Only descend where keys with the prefix can be: "nar/" needs nar, "" needs everything.
        if (prefix.startsWith(`${key}/`) || `${key}/`.startsWith(prefix)) yield* this.walk(key, prefix);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        const info = await this.head(key);
        if (info) yield info;
      }
    }
  }

  private fail(operation: string, err: unknown): StorageError {
    if (err instanceof StorageError) return err;
    const code = errnoOf(err) ?? 'unknown error';
    return new StorageError(`cannot ${operation} in ${this.description} (${code}): ${hintFor(code)}`, {
      cause: err,
      // A full, read-only or forbidden directory refuses every later write too: the upload stops
      // at once (exit 4) instead of failing path after path with retries.
      ...(UNWRITABLE.has(code) ? { code: 'E_STORAGE_UNWRITABLE' } : {}),
    });
  }
}

/**
 * A Writable over an open file that reports each chunk once written (PutOptions.consumed): the
 * compressor's output is lent memory (src/chunk-pool.ts) that comes back here. Chunks queued
 * meanwhile go out in one writev, as fs.WriteStream would send them.
 */
function fileWriter(
  handle: fs.FileHandle,
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
async function writeAll(handle: fs.FileHandle, buffers: Buffer[]): Promise<void> {
  let rest = buffers;
  while (rest.length > 0) {
    let { bytesWritten } = await handle.writev(rest);
    while (rest.length > 0 && bytesWritten >= rest[0]!.length) {
      bytesWritten -= rest[0]!.length;
      rest = rest.slice(1);
    }
    if (bytesWritten > 0) rest = [rest[0]!.subarray(bytesWritten), ...rest.slice(1)];
  }
}

const UNWRITABLE = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM']);

/** What the user can do about a file-system error code. */
function hintFor(code: string): string {
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return 'the file system is full (or over quota); free space and run again';
    case 'EROFS':
      return 'the file system is mounted read-only';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied; check the owner and mode of the directory';
    default:
      return 'check that the directory exists and is writable';
  }
}

function errnoOf(err: unknown): string | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

function isAbsent(err: unknown): boolean {
  const code = errnoOf(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Errors that did not come from the file system (e.g. the body stream's) pass through unchanged. */
function isNotFsError(err: unknown): boolean {
  return errnoOf(err) === undefined || !(err instanceof Error && 'syscall' in err);
}
