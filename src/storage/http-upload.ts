// Sending a NAR of unknown length to an HTTP cache with bounded memory. Nix 2.8 reads the whole
// compressed NAR into memory and PUTs it with its Content-Length (HttpBinaryCacheStore::upsertFile
// drains the stream); loft streams it with `Transfer-Encoding: chunked` instead, which nginx,
// Apache and Go servers take. A server that does not (411 Length Required) gets the NAR spooled to
// a temporary file first and sent with its length, so memory stays bounded either way.
//
// The chunked PUT asks `Expect: 100-continue` and sends no body byte before the server agrees: a
// 411, 401 or 403 then arrives before the NAR stream is touched, and the same attempt can fall
// back to spooling (or fail) without re-reading the store path. A server that ignores the header
// gets the body after a second, as curl does.
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import type * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbortedError, StorageError } from '../errors.js';
import { readAll, type HttpAnswer, type HttpClient } from './http-client.js';

/** How long a chunked PUT waits for `100 Continue` before it sends the body anyway (curl: 1 s). */
const EXPECT_WAIT_MS = 1000;
const ANSWER_LIMIT = 64 * 1024;

export interface ChunkedAnswer extends HttpAnswer {
  /** False when the server answered before a byte of the body was taken from the source. */
  bodyTaken: boolean;
}

/** One chunked PUT of `chunks`; every chunk taken is given back to its pool once written. */
export async function putChunked(
  client: HttpClient,
  key: string,
  headers: Record<string, string>,
  chunks: AsyncIterator<Buffer>,
  signal: AbortSignal | undefined,
): Promise<ChunkedAnswer> {
  const req = client.request('PUT', key, client.headers({ ...headers, expect: '100-continue' }), signal);
  let broken = false;
  const failed = new Promise<never>((_, reject) =>
    req.once('error', (err) => {
      broken = true;
      reject(err);
    }),
  );
  failed.catch(() => undefined);
  const answered = new Promise<http.IncomingMessage>((resolve) => req.once('response', resolve));
  req.flushHeaders();
  const first = await Promise.race([
    once(req, 'continue').then(() => 'go' as const),
    new Promise<'go'>((resolve) => setTimeout(resolve, EXPECT_WAIT_MS, 'go').unref()),
    answered.then(() => 'answered' as const),
    failed,
  ]);
  if (first === 'answered') {
    const answer = await finish(await answered, false);
    req.destroy(); // the server expects a body it will never get: the connection is not reused
    return answer;
  }
  let early: http.IncomingMessage | undefined;
  void answered.then((res) => (early = res));
  let taken = false;
  try {
    for (let r = await chunks.next(); r.done !== true; r = await chunks.next()) {
      const chunk = r.value;
      taken = true;
      // The server answered mid-body (413, 401...) or the connection broke: stop sending.
      if (early !== undefined || broken) break;
      const flushed = req.write(chunk);
      if (!flushed) await Promise.race([once(req, 'drain'), failed, answered]);
    }
  } catch (err) {
    req.destroy(); // the body failed (NAR or compressor): the server must not keep a partial object
    throw taken ? bodyTakenError(key, err) : err;
  }
  req.end();
  try {
    return await finish(await Promise.race([answered, failed]), true);
  } catch (err) {
    throw bodyTakenError(key, err);
  }
}

/**
 * A failure once body bytes were sent: the stream cannot be replayed, so the request is not tried
 * again here (no `cause` for storage/retry.ts to follow); the whole path is, by the uploader.
 */
function bodyTakenError(key: string, err: unknown): unknown {
  if (err instanceof StorageError || err instanceof AbortedError) return err;
  if (typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'AbortError')
    return err;
  const code = (err as { code?: unknown } | undefined)?.code;
  return new StorageError(
    `the connection broke while sending ${key} (${typeof code === 'string' ? code : 'unknown error'}); it is sent again`,
    { transient: true },
  );
}

async function finish(res: http.IncomingMessage, bodyTaken: boolean): Promise<ChunkedAnswer> {
  const body = await readAll(res, ANSWER_LIMIT);
  return { status: res.statusCode ?? 0, headers: res.headers, body, bodyTaken };
}

/** A temporary file holding `chunks`, for a PUT with Content-Length; remove() deletes it. */
export async function spoolToFile(
  chunks: AsyncIterator<Buffer>,
): Promise<{ path: string; size: number; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'loft-spool-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  const path = join(dir, 'body');
  let size = 0;
  try {
    const handle = await open(path, 'w', 0o600);
    try {
      for (let r = await chunks.next(); r.done !== true; r = await chunks.next()) {
        await handle.write(r.value);
        size += r.value.length;
      }
    } finally {
      await handle.close();
    }
  } catch (err) {
    await remove();
    throw err;
  }
  return { path, size, remove };
}

/** A PUT of a file with its length: replayable, so retried like any small request. */
export function putFile(
  client: HttpClient,
  key: string,
  headers: Record<string, string>,
  file: { path: string; size: number },
  signal: AbortSignal | undefined,
): Promise<HttpAnswer> {
  return client.retrying('PUT', key, signal, async () => {
    const req = client.request(
      'PUT',
      key,
      client.headers({ ...headers, 'content-length': file.size }),
      signal,
    );
    const failed = new Promise<never>((_, reject) => req.once('error', reject));
    const answered = new Promise<http.IncomingMessage>((resolve) => req.once('response', resolve));
    const body = createReadStream(file.path);
    body.once('error', (err) => req.destroy(err));
    body.pipe(req);
    try {
      const res = await Promise.race([answered, failed]);
      return { status: res.statusCode ?? 0, headers: res.headers, body: await readAll(res, ANSWER_LIMIT) };
    } finally {
      body.destroy();
    }
  });
}
