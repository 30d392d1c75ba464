// ObjectStore over an HTTP binary cache that takes uploads, speaking Nix's HttpBinaryCacheStore
// protocol: HEAD for presence (404 and 403 both mean absent: "S3 buckets return 403 if a file
// doesn't exist and the bucket is unlistable"), GET to read, PUT with the Content-Type the caller
// gives (text/x-nix-narinfo, application/x-nix-nar, text/x-nix-cache-info). Listing and deleting
// use WebDAV (PROPFIND, DELETE) where the server has them; see http-listing.ts.
import type { Readable } from 'node:stream';
import { AbortedError, StorageError } from '../errors.js';
import type { Logger } from '../log.js';
import { parseNixCacheInfo } from '../format/nix-cache-info.js';
import { BodySource } from './body-source.js';
import { cacheInfoAsLines, optionalObjectKind, refusesThisKindOfUpload } from './http-cache-shapes.js';
import { HttpClient, type HttpAnswer, type HttpClientOptions } from './http-client.js';
import { HttpStatusError, httpStorageError } from './http-errors.js';
import { deleteKeys, listKeys } from './http-listing.js';
import { getStream } from './http-read.js';
import { putChunked, putFile, spoolToFile } from './http-upload.js';
import type { BeforeDelete, ObjectInfo, ObjectStore, PutOptions } from './object-store.js';

/** A body up to this size is read ahead and sent with its Content-Length, in one replayable PUT. */
const SMALL_BODY_BYTES = 1024 * 1024;
const ABSENT = new Set([403, 404, 410]);

export interface HttpStoreOptions extends HttpClientOptions {
  logger?: Logger;
}

export class HttpObjectStore implements ObjectStore {
  readonly description: string;
  readonly client: HttpClient;
  /** Set once the server answered a chunked PUT with 411: later NARs are spooled at once. */
  private needsLength = false;
  /** Optional objects the server refused, warned about once (http-cache-shapes.ts). */
  private warnedRefusal = false;

  constructor(private readonly options: HttpStoreOptions) {
    this.client = new HttpClient(options);
    this.description = options.url;
  }

  /**
   * The first request: reads nix-cache-info, with credentials when configured. nix-stored wants
   * them for reads too and answers a wrong password with 500, which this request turns into "check
   * the credentials" (http-errors.ts); a server that takes anonymous reads shows a wrong password
   * only at the first PUT (401 or 403), which stops the run the same way.
   */
  async checkAccess(signal?: AbortSignal): Promise<void> {
    const answer = await this.send('GET', 'nix-cache-info', 'read nix-cache-info', { signal }, true);
    if (ABSENT.has(answer.status)) return;
    if (answer.status >= 300) {
      throw this.statusFailure('GET', 'nix-cache-info', answer, 'read nix-cache-info', true);
    }
    try {
      parseNixCacheInfo(cacheInfoAsLines(answer.body).toString('utf8'));
    } catch {
      // A web server that answers every path (a fallback page) would also answer 200 to every
      // HEAD, so every path would look present and loft would upload nothing.
      throw new StorageError(
        `${this.description}/nix-cache-info is not a binary cache's nix-cache-info ` +
          `(${answer.headers['content-type'] ?? 'no content type'}): check http.url`,
        { code: 'E_STORAGE_NOT_CACHE' },
      );
    }
  }

  async head(key: string, signal?: AbortSignal): Promise<ObjectInfo | undefined> {
    const answer = await this.send('HEAD', key, `head ${key}`, { signal });
    if (ABSENT.has(answer.status)) return undefined;
    // A server without that kind of object (nix-stored has no log/, .ls or realisations) answers
    // "no such method" for it: the object is not there, as its refused PUT says too (checkPut).
    if (optionalObjectKind(key) !== undefined && refusesThisKindOfUpload(answer.status)) return undefined;
    if (answer.status >= 300) throw this.statusFailure('HEAD', key, answer, `head ${key}`);
    const size = Number(answer.headers['content-length'] ?? 0);
    const modified = Date.parse(answer.headers['last-modified'] ?? '');
    return {
      key,
      size: Number.isFinite(size) ? size : 0,
      lastModified: new Date(Number.isFinite(modified) ? modified : 0),
    };
  }

  async get(key: string, signal?: AbortSignal): Promise<Buffer | undefined> {
    const answer = await this.send('GET', key, `get ${key}`, { signal });
    if (ABSENT.has(answer.status)) return undefined;
    if (answer.status >= 300) throw this.statusFailure('GET', key, answer, `get ${key}`);
    return key === 'nix-cache-info' ? cacheInfoAsLines(answer.body) : answer.body;
  }

  getStream(key: string, signal?: AbortSignal): Promise<Readable | undefined> {
    return getStream(this.client, key, signal).then(
      (answer) => {
        if (answer.stream !== undefined) return answer.stream;
        if (ABSENT.has(answer.status)) return undefined;
        throw this.statusFailure('GET', key, answer, `get ${key}`);
      },
      (err: unknown) => {
        throw this.fail(`get ${key}`, err);
      },
    );
  }

  async putBytes(key: string, body: Buffer | string, opts: PutOptions): Promise<void> {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    const headers = { 'content-type': opts.contentType };
    const answer = await this.send('PUT', key, `put ${key}`, { body: bytes, headers, signal: opts.signal });
    this.checkPut(key, answer);
  }

  /**
   * Small bodies go as one PUT with Content-Length; larger ones stream chunked, or, once the
   * server said 411, through a temporary file. Whatever fails, the body is destroyed with the
   * thrown error so the pipeline feeding it settles.
   */
  async putStream(key: string, body: Readable, opts: PutOptions): Promise<void> {
    const source = new BodySource(body);
    const onAbort = () => body.destroy(new AbortedError(`upload of ${key} was cancelled`));
    if (opts.signal?.aborted) onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const head = await source.readUpTo(SMALL_BODY_BYTES);
      if (head.ended) {
        const bytes = Buffer.concat(head.chunks);
        await this.putBytes(key, bytes, opts);
        opts.onStored?.(bytes.length);
        return;
      }
      let sent = 0;
      await this.putLarge(
        key,
        counted(source.rest(head.chunks), (n) => (sent += n)),
        opts,
      );
      // One PUT: the server acknowledges the whole body when it answers.
      opts.onStored?.(sent);
    } catch (err) {
      const failure = source.error ?? this.fail(`put ${key}`, err);
      body.destroy(failure);
      throw failure;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  private async putLarge(key: string, chunks: AsyncGenerator<Buffer>, opts: PutOptions): Promise<void> {
    const headers = { 'content-type': opts.contentType };
    if (!this.needsLength) {
      // Retried only while no body byte was taken (a 503 before 100 Continue, say); a 411 is
      // final too: the NAR goes on to the spool below.
      const answer = await this.client.retrying(
        'PUT',
        key,
        opts.signal,
        () => putChunked(this.client, key, headers, chunks, opts.signal),
        (a) => a.bodyTaken || a.status === 411,
      );
      if (answer.status !== 411) return this.checkPut(key, answer);
      this.needsLength = true;
      this.options.logger?.info(
        { url: this.description },
        'the server wants a Content-Length (411): NARs are spooled to a temporary file first',
      );
      if (answer.bodyTaken) {
        throw new StorageError(
          `${this.description} refused a chunked upload of ${key} (HTTP 411); it is sent again with its length`,
          { transient: true },
        );
      }
    }
    const spooled = await spoolToFile(chunks);
    try {
      this.checkPut(key, await putFile(this.client, key, headers, spooled, opts.signal));
    } finally {
      await spooled.remove();
    }
  }

  async createExclusive(key: string, body: Buffer | string, opts: PutOptions): Promise<boolean> {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    const headers = { 'content-type': opts.contentType, 'if-none-match': '*' };
    const answer = await this.send('PUT', key, `put ${key} if absent`, {
      body: bytes,
      headers,
      signal: opts.signal,
    });
    if (answer.status === 412) return false;
    if (answer.status >= 300) throw this.statusFailure('PUT', key, answer, `put ${key} if absent`);
    return true;
  }

  list(prefix: string, signal?: AbortSignal): AsyncIterable<ObjectInfo> {
    return listKeys(this.client, prefix, signal, (op, err) => this.fail(op, err));
  }

  deleteMany(keys: string[], signal?: AbortSignal, beforeRequest?: BeforeDelete): Promise<void> {
    return deleteKeys(this.client, keys, signal, (op, err) => this.fail(op, err), beforeRequest);
  }

  close(): Promise<void> {
    this.client.close();
    return Promise.resolve();
  }

  /** A refused optional object is one warning for the whole run; anything else not 2xx fails. */
  private checkPut(key: string, answer: HttpAnswer): void {
    if (answer.status < 300) return;
    const kind = optionalObjectKind(key);
    if (kind !== undefined && refusesThisKindOfUpload(answer.status)) {
      if (!this.warnedRefusal) {
        this.warnedRefusal = true;
        this.options.logger?.warn(
          { url: this.description, key, status: answer.status },
          `the server takes no uploads of ${kind} (nor, likely, of the other extras: nix-cache-info, build logs, listings, realisations): loft carries on without them`,
        );
      }
      return;
    }
    throw this.statusFailure('PUT', key, answer, `put ${key}`);
  }

  private async send(
    method: string,
    key: string,
    operation: string,
    opts: { body?: Buffer; headers?: Record<string, string>; signal?: AbortSignal | undefined },
    first = false,
  ): Promise<HttpAnswer> {
    try {
      return await this.client.send(method, key, opts);
    } catch (err) {
      throw this.fail(operation, err, first);
    }
  }

  private statusFailure(
    method: string,
    key: string,
    answer: HttpAnswer,
    operation: string,
    first = false,
  ): Error {
    const err = new HttpStatusError(
      answer.status,
      method,
      key,
      answer.body.subarray(0, 512).toString('utf8'),
    );
    return this.fail(operation, err, first);
  }

  private fail(operation: string, err: unknown, first = false): Error {
    return httpStorageError(err, {
      operation,
      where: this.description,
      firstAuthenticated: first && this.client.sendsCredentials,
      ...(this.client.options.url.startsWith('https:')
        ? {
            tls: {
              caFile: this.client.options.ca !== undefined,
              clientCert: this.client.options.clientCert !== undefined,
            },
          }
        : {}),
    });
  }
}

/** Passes `chunks` through, telling `add` each one's size. */
async function* counted(chunks: AsyncGenerator<Buffer>, add: (n: number) => void): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    add(chunk.length);
    yield chunk;
  }
}
