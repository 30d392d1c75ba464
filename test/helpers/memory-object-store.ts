// A hand-written in-memory ObjectStore for unit tests of code above the storage layer. It records
// every call in order so tests can check what was written when.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type {
  BeforeDelete,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  TaggedBody,
} from '../../src/storage/object-store.js';

/** S3's ETag of a single-part object: the MD5 of its bytes, here without the quotes. */
export const etagOf = (body: Buffer): string => createHash('md5').update(body).digest('hex');

export interface MemoryCall {
  op: 'head' | 'get' | 'putBytes' | 'putStream' | 'list' | 'deleteMany';
  key: string;
}

export class MemoryObjectStore implements ObjectStore {
  readonly description = 'memory://test';
  readonly objects = new Map<
    string,
    { body: Buffer; contentType: string; contentEncoding?: string; lastModified: Date }
  >();
  readonly calls: MemoryCall[] = [];
  /** What the store says one upload buffers (ObjectStore.bufferedPerUpload); a test may set it. */
  bufferedPerUpload: (sizeHint: number) => number = () => 0;
  /** Make the next matching put fail, once. */
  failPut: ((key: string) => Error | undefined) | undefined;

  head(key: string): Promise<ObjectInfo | undefined> {
    this.calls.push({ op: 'head', key });
    const o = this.objects.get(key);
    return Promise.resolve(
      o ? { key, size: o.body.length, lastModified: o.lastModified, etag: etagOf(o.body) } : undefined,
    );
  }
  get(key: string): Promise<Buffer | undefined> {
    this.calls.push({ op: 'get', key });
    return Promise.resolve(this.objects.get(key)?.body);
  }
  /** Through get(), so a test that wraps get() sees these reads too. */
  async getTagged(key: string): Promise<TaggedBody | undefined> {
    const body = await this.get(key);
    return body === undefined ? undefined : { body, etag: etagOf(body) };
  }
  putBytes(key: string, body: Buffer | string, opts: PutOptions): Promise<void> {
    this.calls.push({ op: 'putBytes', key });
    const err = this.failPut?.(key);
    if (err) return Promise.reject(err);
    const bytes = Buffer.from(body);
    this.objects.set(key, {
      body: bytes,
      contentType: opts.contentType,
      ...(opts.contentEncoding ? { contentEncoding: opts.contentEncoding } : {}),
      lastModified: new Date(),
    });
    opts.onEtag?.(etagOf(bytes));
    return Promise.resolve();
  }
  async putStream(key: string, body: Readable, opts: PutOptions): Promise<void> {
    this.calls.push({ op: 'putStream', key });
    const chunks: Buffer[] = [];
    try {
      const err = this.failPut?.(key);
      if (err) throw err;
      for await (const c of body) chunks.push(c as Buffer);
    } catch (err) {
      body.destroy(err as Error);
      throw err;
    }
    this.objects.set(key, {
      body: Buffer.concat(chunks),
      contentType: opts.contentType,
      lastModified: new Date(),
    });
  }
  // An in-memory listing has nothing to wait for; the interface is async for real stores.
  // eslint-disable-next-line @typescript-eslint/require-await
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    this.calls.push({ op: 'list', key: prefix });
    for (const [key, o] of [...this.objects].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (key.startsWith(prefix)) {
        yield { key, size: o.body.length, lastModified: o.lastModified, etag: etagOf(o.body) };
      }
    }
  }
  /** One request for the whole list, like a directory. */
  deleteMany(keys: string[], _signal?: AbortSignal, beforeRequest?: BeforeDelete): Promise<void> {
    if (keys.length > 0 && beforeRequest && !beforeRequest(keys.length)) return Promise.resolve();
    for (const key of keys) {
      this.calls.push({ op: 'deleteMany', key });
      this.objects.delete(key);
    }
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
