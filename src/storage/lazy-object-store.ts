// An ObjectStore that opens the real one on first use. A run whose every path the presence cache
// already knows (a post-build hook on a warm cache, a re-run) never talks to the bucket: it should
// neither load the AWS SDK (about a tenth of a second) nor send the access check.
//
// The access check goes out beside the first reads, not before them: over a 40 ms link, waiting
// for its answer put a handshake and a round trip in series before every other request of a run
// (bench/wan.bench.ts). Reads are sent at once but their answers are handed out only once the check
// has passed, so a wrong setting still fails with the check's one clear error, and a server that
// answers 200 to everything never has its answers believed. Writes wait for the check before they
// are sent: nothing is written to a target that has not proven to be the bucket.
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

/**
 * A store that is built and whose access check is in flight: `access` settles with the check (it
 * rejects with the check's error). A store returned bare by `open` counts as checked.
 */
export interface OpenedStore {
  store: ObjectStore;
  access: Promise<void>;
}

export class LazyObjectStore implements ObjectStore, MultipartUploads, ResumableParts {
  #opened: Promise<OpenedStore> | undefined;

  /**
   * @param open builds the store and starts its access check. If that fails with a definite answer,
   *   every call fails with that error (wrong credentials do not get better by asking again); after
   *   a transient failure (connection refused, 5xx) the next call tries again, so a daemon started
   *   before its endpoint recovers once the endpoint is back.
   */
  constructor(
    readonly description: string,
    private readonly open: () => Promise<ObjectStore | OpenedStore>,
    /** The real store's bufferedPerUpload, known from its settings before it is open. */
    private readonly buffered: (sizeHint: number) => number = () => 0,
  ) {}

  bufferedPerUpload(sizeHint: number): number {
    return this.buffered(sizeHint);
  }

  releaseIdleMemory(): void {
    void this.#opened?.then(
      ({ store, access }) => access.then(() => store.releaseIdleMemory?.()),
      () => undefined,
    );
  }

  private store(): Promise<OpenedStore> {
    if (this.#opened === undefined) {
      const opening = this.open().then(asOpened);
      this.#opened = opening;
      const forget = (err: unknown) => {
        if (err instanceof StorageError && err.transient && this.#opened === opening)
          this.#opened = undefined;
      };
      opening.then(
        ({ store, access }) =>
          access.catch((err: unknown) => {
            forget(err);
            // Reads sent beside the check end with the store; their answers are never handed out.
            store.close().catch(() => undefined);
          }),
        forget,
      );
    }
    return this.#opened;
  }

  /** Sends `op` now and hands out its answer once the access check has passed. */
  private async read<T>(op: (store: ObjectStore) => Promise<T>, discard?: (value: T) => void): Promise<T> {
    const { store, access } = await this.store();
    const answer = op(store);
    answer.catch(() => undefined);
    try {
      await access;
    } catch (err) {
      if (discard) answer.then(discard, () => undefined);
      throw err;
    }
    return answer;
  }

  /** Sends `op` once the access check has passed. */
  private async write<T>(op: (store: ObjectStore) => Promise<T>): Promise<T> {
    const { store, access } = await this.store();
    await access;
    return op(store);
  }

  /** A listing's first page is asked for beside the access check, and handed out after it. */
  private async *readAll<T>(open: (store: ObjectStore) => AsyncIterable<T>): AsyncGenerator<T> {
    const { store, access } = await this.store();
    const it = open(store)[Symbol.asyncIterator]();
    const first = it.next();
    first.catch(() => undefined);
    try {
      await access;
    } catch (err) {
      first
        .then(
          () => it.return?.(),
          () => undefined,
        )
        .catch(() => undefined);
      throw err;
    }
    let step = await first;
    try {
      while (step.done !== true) {
        yield step.value;
        step = await it.next();
      }
    } finally {
      if (step.done !== true) await it.return?.();
    }
  }

  async head(key: string, signal?: AbortSignal): Promise<ObjectInfo | undefined> {
    return this.read((s) => s.head(key, signal));
  }
  async get(key: string, signal?: AbortSignal): Promise<Buffer | undefined> {
    return this.read((s) => s.get(key, signal));
  }
  async getTagged(key: string, signal?: AbortSignal): Promise<TaggedBody | undefined> {
    return this.read(async (store) => {
      if (store.getTagged) return store.getTagged(key, signal);
      const body = await store.get(key, signal);
      return body === undefined ? undefined : { body, etag: undefined };
    });
  }
  async getStream(key: string, signal?: AbortSignal): Promise<Readable | undefined> {
    return this.read(
      async (store) =>
        store.getStream ? store.getStream(key, signal) : bufferStream(await store.get(key, signal)),
      (stream) => stream?.destroy(),
    );
  }
  async putBytes(key: string, body: Buffer | string, opts: PutOptions): Promise<void> {
    return this.write((s) => s.putBytes(key, body, opts));
  }
  async putStream(key: string, body: Readable, opts: PutOptions): Promise<void> {
    let store: ObjectStore;
    try {
      const opened = await this.store();
      await opened.access;
      store = opened.store;
    } catch (err) {
      // The contract: a failed put destroys the body, so the pipeline feeding it settles.
      body.destroy(err as Error);
      throw err;
    }
    return store.putStream(key, body, opts);
  }
  list(prefix: string, signal?: AbortSignal): AsyncIterable<ObjectInfo> {
    return this.readAll((s) => s.list(prefix, signal));
  }
  listTopLevel(signal?: AbortSignal, folders?: Set<string>): AsyncIterable<ObjectInfo> {
    return this.readAll((s) => topLevelObjects(s, signal, folders));
  }
  async createExclusive(key: string, body: Buffer | string, opts: PutOptions): Promise<boolean> {
    return this.write((store) => {
      if (!store.createExclusive) throw new StorageError(`${this.description} has no conditional create`);
      return store.createExclusive(key, body, opts);
    });
  }

  async deleteMany(keys: string[], signal?: AbortSignal, beforeRequest?: BeforeDelete): Promise<void> {
    return this.write((s) => s.deleteMany(keys, signal, beforeRequest));
  }
  /** A real store without multipart uploads has nothing to resume. */
  async listUploadParts(
    key: string,
    uploadId: string,
    signal?: AbortSignal,
  ): Promise<ListedPart[] | undefined> {
    return this.read(async (store) => {
      const parts = resumablePartsOf(store);
      return parts ? parts.listUploadParts(key, uploadId, signal) : undefined;
    });
  }

  /** A real store without multipart uploads has no unfinished ones: nothing is listed. */
  listMultipartUploads(signal?: AbortSignal): AsyncIterable<MultipartUpload> {
    return this.readAll((store) =>
      hasMultipartUploads(store) ? store.listMultipartUploads(signal) : emptyListing<MultipartUpload>(),
    );
  }
  async abortMultipartUpload(key: string, uploadId: string, signal?: AbortSignal): Promise<void> {
    return this.write((store) => {
      if (!hasMultipartUploads(store)) {
        throw new StorageError(
          `${this.description} has no multipart uploads, so none can be aborted (${key})`,
        );
      }
      return store.abortMultipartUpload(key, uploadId, signal);
    });
  }
  async close(): Promise<void> {
    const opened = await this.#opened?.catch(() => undefined);
    if (opened === undefined) return;
    // A store whose check failed was closed then.
    const checked = await opened.access.then(
      () => true,
      () => false,
    );
    if (checked) await opened.store.close();
  }
}

function asOpened(opened: ObjectStore | OpenedStore): OpenedStore {
  return 'access' in opened && 'store' in opened ? opened : { store: opened, access: Promise.resolve() };
}

async function* emptyListing<T>(): AsyncGenerator<T> {}

function bufferStream(body: Buffer | undefined): Readable | undefined {
  return body === undefined ? undefined : Readable.from([body]);
}
