// An ObjectStore that opens the real one on first use. A run whose every path the presence cache
// already knows (a post-build hook on a warm cache, a re-run) never talks to the bucket: it should
// neither load the AWS SDK (about a tenth of a second) nor send the access check.
//
// It always offers the multipart-upload methods the pruner looks for (`hasMultipartUploads` in
// multipart-uploads.ts tests for them), since whether the real store has them is only known
// once it is open; openObjectStore wraps S3 stores only, and those have them.
import { Readable } from 'node:stream';
import { StorageError } from '../errors.js';
import {
  topLevelObjects,
  type BeforeDelete,
  type ObjectInfo,
  type TaggedBody,
  type ObjectStore,
  type PutOptions,
} from './object-store.js';
import {
  hasMultipartUploads,
  resumablePartsOf,
  type MultipartUpload,
  type MultipartUploads,
  type ResumableParts,
} from './multipart-uploads.js';
import type { ListedPart } from './resumable-upload.js';

export class LazyObjectStore implements ObjectStore, MultipartUploads, ResumableParts {
  #opened: Promise<ObjectStore> | undefined;

  /**
   * @param open builds the store and checks access once. If that fails with a definite answer, every
   *   call fails with that error (wrong credentials do not get better by asking again); after a
   *   transient failure (connection refused, 5xx) the next call tries again, so a daemon started
   *   before its endpoint recovers once the endpoint is back.
   */
  constructor(
    readonly description: string,
    private readonly open: () => Promise<ObjectStore>,
    /** The real store's bufferedPerUpload, known from its settings before it is open. */
    private readonly buffered: (sizeHint: number) => number = () => 0,
  ) {}

  bufferedPerUpload(sizeHint: number): number {
    return this.buffered(sizeHint);
  }

  releaseIdleMemory(): void {
    void this.#opened?.then(
      (store) => store.releaseIdleMemory?.(),
      () => undefined,
    );
  }

  private store(): Promise<ObjectStore> {
    if (this.#opened === undefined) {
      const opening = this.open();
      this.#opened = opening;
      opening.catch((err: unknown) => {
        if (err instanceof StorageError && err.transient && this.#opened === opening)
          this.#opened = undefined;
      });
    }
    return this.#opened;
  }

  async head(key: string, signal?: AbortSignal): Promise<ObjectInfo | undefined> {
    return (await this.store()).head(key, signal);
  }
  async get(key: string, signal?: AbortSignal): Promise<Buffer | undefined> {
    return (await this.store()).get(key, signal);
  }
  async getTagged(key: string, signal?: AbortSignal): Promise<TaggedBody | undefined> {
    const store = await this.store();
    if (store.getTagged) return store.getTagged(key, signal);
    const body = await store.get(key, signal);
    return body === undefined ? undefined : { body, etag: undefined };
  }
  async getStream(key: string, signal?: AbortSignal): Promise<Readable | undefined> {
    const store = await this.store();
    return store.getStream ? store.getStream(key, signal) : bufferStream(await store.get(key, signal));
  }
  async putBytes(key: string, body: Buffer | string, opts: PutOptions): Promise<void> {
    return (await this.store()).putBytes(key, body, opts);
  }
  async putStream(key: string, body: Readable, opts: PutOptions): Promise<void> {
    let store: ObjectStore;
    try {
      store = await this.store();
    } catch (err) {
      // The contract: a failed put destroys the body, so the pipeline feeding it settles.
      body.destroy(err as Error);
      throw err;
    }
    return store.putStream(key, body, opts);
  }
  async *list(prefix: string, signal?: AbortSignal): AsyncIterable<ObjectInfo> {
    yield* (await this.store()).list(prefix, signal);
  }
  async *listTopLevel(signal?: AbortSignal, folders?: Set<string>): AsyncIterable<ObjectInfo> {
    yield* topLevelObjects(await this.store(), signal, folders);
  }
  async createExclusive(key: string, body: Buffer | string, opts: PutOptions): Promise<boolean> {
    const store = await this.store();
    if (!store.createExclusive) throw new StorageError(`${this.description} has no conditional create`);
    return store.createExclusive(key, body, opts);
  }

  async deleteMany(keys: string[], signal?: AbortSignal, beforeRequest?: BeforeDelete): Promise<void> {
    return (await this.store()).deleteMany(keys, signal, beforeRequest);
  }
  /** A real store without multipart uploads has nothing to resume. */
  async listUploadParts(
    key: string,
    uploadId: string,
    signal?: AbortSignal,
  ): Promise<ListedPart[] | undefined> {
    const parts = resumablePartsOf(await this.store());
    return parts ? parts.listUploadParts(key, uploadId, signal) : undefined;
  }

  /** A real store without multipart uploads has no unfinished ones: nothing is listed. */
  async *listMultipartUploads(signal?: AbortSignal): AsyncIterable<MultipartUpload> {
    const store = await this.store();
    if (hasMultipartUploads(store)) yield* store.listMultipartUploads(signal);
  }
  async abortMultipartUpload(key: string, uploadId: string, signal?: AbortSignal): Promise<void> {
    const store = await this.store();
    if (!hasMultipartUploads(store)) {
      throw new StorageError(`${this.description} has no multipart uploads, so none can be aborted (${key})`);
    }
    return store.abortMultipartUpload(key, uploadId, signal);
  }
  async close(): Promise<void> {
    if (this.#opened === undefined) return;
    const store = await this.#opened.catch(() => undefined);
    await store?.close();
  }
}

function bufferStream(body: Buffer | undefined): Readable | undefined {
  return body === undefined ? undefined : Readable.from([body]);
}
