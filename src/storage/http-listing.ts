// Listing and deleting on an HTTP cache through WebDAV: PROPFIND with `Depth: 1` walks the
// collections under the cache's URL (nginx's dav-ext module answers Depth 0 and 1 only), DELETE
// removes one object at a time. A server without PROPFIND (nix-stored, a plain web server) cannot
// list: that is one StorageError, E_STORAGE_NO_LISTING, which the commands that need a listing
// report as it is, and the presence check answers with HEADs instead.
import pLimit from 'p-limit';
import { StorageError } from '../errors.js';
import { LOFT_PREFIX } from '../format/loft-state.js';
import type { HttpClient } from './http-client.js';
import { HttpStatusError } from './http-errors.js';
import { parseMultistatus, PROPFIND_BODY, type DavEntry } from './http-propfind.js';
import type { BeforeDelete, ObjectInfo } from './object-store.js';

type Fail = (operation: string, err: unknown) => Error;

/** DELETEs in flight at once. */
const DELETE_CONCURRENCY = 8;

/** Every object whose key starts with `prefix`, collection by collection, in key order. */
export async function* listKeys(
  client: HttpClient,
  prefix: string,
  signal: AbortSignal | undefined,
  fail: Fail,
): AsyncGenerator<ObjectInfo> {
  const start = prefix.slice(0, prefix.lastIndexOf('/') + 1);
  try {
    yield* walk(client, start, prefix, signal, fail);
  } catch (err) {
    // loft's own state (`.loft/`: prune marks, published roots) exists only where a prune ran,
    // and a prune needs a listing: a cache that cannot list has none, and an upload reading it
    // before each batch (upload/prune-guard.ts) must not fail for that.
    const noListing = err instanceof StorageError && err.code === 'E_STORAGE_NO_LISTING';
    if (!(noListing && prefix.startsWith(LOFT_PREFIX))) throw err;
  }
}

async function* walk(
  client: HttpClient,
  dir: string,
  prefix: string,
  signal: AbortSignal | undefined,
  fail: Fail,
): AsyncGenerator<ObjectInfo> {
  const entries = await propfind(client, dir, signal, fail);
  if (entries === undefined) return;
  const self = dir.replace(/\/$/, '');
  entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const entry of entries) {
    if (entry.key === self) continue;
    if (entry.collection) {
      const sub = `${entry.key}/`;
      // Only descend where keys with the prefix can be: "nar/" needs nar, "" needs everything.
      if (prefix.startsWith(sub) || sub.startsWith(prefix)) yield* walk(client, sub, prefix, signal, fail);
    } else if (entry.key.startsWith(prefix)) {
      yield { key: entry.key, size: entry.size, lastModified: entry.lastModified };
    }
  }
}

/** The members of `dir` (undefined: it does not exist). */
async function propfind(
  client: HttpClient,
  dir: string,
  signal: AbortSignal | undefined,
  fail: Fail,
): Promise<DavEntry[] | undefined> {
  const operation = `list ${dir === '' ? 'the cache' : dir}`;
  let answer;
  try {
    answer = await client.send('PROPFIND', dir, {
      headers: { depth: '1', 'content-type': 'application/xml; charset=utf-8' },
      body: Buffer.from(PROPFIND_BODY, 'utf8'),
      signal,
    });
  } catch (err) {
    throw fail(operation, err);
  }
  // A missing sub-collection is an empty one (nginx makes nar/ with the first NAR); a missing
  // root means the server did not understand the question (nix-stored answers 404 to anything
  // it has no route for).
  if (answer.status === 404 && dir !== '') return undefined;
  if (answer.status === 207) return parseMultistatus(answer.body.toString('utf8'), basePathOf(client));
  if (answer.status === 401 || answer.status >= 500) {
    throw fail(
      operation,
      new HttpStatusError(answer.status, 'PROPFIND', dir, answer.body.subarray(0, 512).toString()),
    );
  }
  throw new StorageError(
    `${client.options.url} cannot list its files (PROPFIND answered HTTP ${answer.status}): --populate-cache, ` +
      'verify of the whole cache and --prune need a WebDAV listing (nginx with libnginx-mod-http-dav-ext, ' +
      'Apache mod_dav); verify PATH... and uploads work without one',
    { code: 'E_STORAGE_NO_LISTING' },
  );
}

function basePathOf(client: HttpClient): string {
  return decodeURIComponent(client.urlOf('').pathname);
}

/** Deletes each key; one that is already gone is not an error. */
export async function deleteKeys(
  client: HttpClient,
  keys: string[],
  signal: AbortSignal | undefined,
  fail: Fail,
  beforeRequest?: BeforeDelete,
): Promise<void> {
  const limit = pLimit(DELETE_CONCURRENCY);
  let stopped = false;
  await Promise.all(
    keys.map((key) =>
      limit(async () => {
        // One key per request here: the caller's budget (a prune's time) is asked before each.
        if (stopped || (beforeRequest !== undefined && !beforeRequest(1))) {
          stopped = true;
          return;
        }
        let answer;
        try {
          answer = await client.send('DELETE', key, { signal });
        } catch (err) {
          throw fail(`delete ${key}`, err);
        }
        if (answer.status < 300 || answer.status === 404 || answer.status === 410) return;
        throw fail(
          `delete ${key}`,
          new HttpStatusError(answer.status, 'DELETE', key, answer.body.subarray(0, 512).toString()),
        );
      }),
    ),
  );
}
