// A hand-written in-memory ObjectStore for unit tests of code above the storage layer. It records
// every call in order so tests can check what was written when.
import type { Readable } from 'node:stream';
import type { BeforeDelete, ObjectInfo, ObjectStore, PutOptions } from '../../src/storage/object-store.js';

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
    return Promise.resolve(o ? { key, size: o.body.length, lastModified: o.lastModified } : undefined);
  }
  get(key: string): Promise<Buffer | undefined> {
    this.calls.push({ op: 'get', key });
    return Promise.resolve(this.objects.get(key)?.body);
  }
  putBytes(key: string, body: Buffer | string, opts: PutOptions): Promise<void> {
    this.calls.push({ op: 'putBytes', key });
    const err = this.failPut?.(key);
    if (err) return Promise.reject(err);
    this.objects.set(key, {
      body: Buffer.from(body),
      contentType: opts.contentType,
      ...(opts.contentEncoding ? { contentEncoding: opts.contentEncoding } : {}),
      lastModified: new Date(),
    });
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
      if (key.startsWith(prefix)) yield { key, size: o.body.length, lastModified: o.lastModified };
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
