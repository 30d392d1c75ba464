import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { StorageError } from '../../../src/errors.js';
import { LazyObjectStore } from '../../../src/storage/lazy-object-store.js';
import { MemoryObjectStore } from '../../helpers/memory-object-store.js';

test('opens the real store once, on first use, and not at all when unused', async () => {
  let opened = 0;
  const inner = new MemoryObjectStore();
  const lazy = new LazyObjectStore('memory://lazy', () => {
    opened++;
    return Promise.resolve(inner);
  });
  await lazy.close();
  assert.equal(opened, 0);
  assert.equal(await lazy.head('x'), undefined);
  await lazy.putBytes('x', 'body', { contentType: 't' });
  const keys: string[] = [];
  for await (const o of lazy.list('')) keys.push(o.key);
  assert.deepEqual(keys, ['x']);
  assert.equal(opened, 1);
});

test('a failed open fails every call with that error and destroys a stream body', async () => {
  let opened = 0;
  const lazy = new LazyObjectStore('memory://lazy', () => {
    opened++;
    return Promise.reject(new Error('bad credentials'));
  });
  await assert.rejects(lazy.head('x'), /bad credentials/);
  const body = Readable.from([Buffer.from('nar')]);
  const bodyErrors: Error[] = [];
  body.on('error', (e) => bodyErrors.push(e)); // in loft a pipeline listens; here the test does
  await assert.rejects(lazy.putStream('y', body, { contentType: 't' }), /bad credentials/);
  assert.ok(body.destroyed);
  await new Promise((r) => setImmediate(r));
  assert.match(String(bodyErrors[0]), /bad credentials/);
  assert.equal(opened, 1);
  await lazy.close();
});

test('after a transient failure to open, the next call opens again', async () => {
  let opened = 0;
  const inner = new MemoryObjectStore();
  const lazy = new LazyObjectStore('memory://lazy', () => {
    opened++;
    if (opened === 1) {
      return Promise.reject(
        new StorageError('connection refused', { code: 'E_STORAGE_UNREACHABLE', transient: true }),
      );
    }
    return Promise.resolve(inner);
  });
  await assert.rejects(lazy.head('x'), /connection refused/);
  await new Promise((r) => setImmediate(r));
  assert.equal(await lazy.head('x'), undefined);
  assert.equal(opened, 2);
  await lazy.close();
});

test('multipart methods are always offered and forwarded to the real store once it is open', async () => {
  let opened = 0;
  const aborted: string[] = [];
  const initiated = new Date('2026-11-01T00:00:00Z');
  const inner = Object.assign(new MemoryObjectStore(), {
    // eslint-disable-next-line @typescript-eslint/require-await
    async *listMultipartUploads(signal?: AbortSignal) {
      yield { key: 'nar/a.nar.zst', uploadId: signal ? 'with-signal' : 'u1', initiated };
    },
    abortMultipartUpload: (key: string, uploadId: string) => {
      aborted.push(`${key}#${uploadId}`);
      return Promise.resolve();
    },
  });
  const lazy = new LazyObjectStore('memory://lazy', () => {
    opened++;
    return Promise.resolve(inner);
  });
  // What multipartUploadsOf (src/prune/inventory.ts) checks, before anything is opened.
  assert.equal(typeof lazy.listMultipartUploads, 'function');
  assert.equal(typeof lazy.abortMultipartUpload, 'function');
  assert.equal(opened, 0);
  const listed = [];
  for await (const u of lazy.listMultipartUploads(new AbortController().signal)) listed.push(u);
  assert.deepEqual(listed, [{ key: 'nar/a.nar.zst', uploadId: 'with-signal', initiated }]);
  await lazy.abortMultipartUpload('nar/a.nar.zst', 'u1');
  assert.deepEqual(aborted, ['nar/a.nar.zst#u1']);
  assert.equal(opened, 1);
});

test('a real store without multipart uploads lists none and refuses an abort', async () => {
  const lazy = new LazyObjectStore('memory://lazy', () => Promise.resolve(new MemoryObjectStore()));
  const listed = [];
  for await (const u of lazy.listMultipartUploads()) listed.push(u);
  assert.deepEqual(listed, []);
  await assert.rejects(lazy.abortMultipartUpload('nar/a.nar.zst', 'u1'), StorageError);
});

/** An access check that answers when the test says so. */
function pendingCheck() {
  let pass!: () => void;
  let fail!: (err: Error) => void;
  const access = new Promise<void>((resolve, reject) => {
    pass = resolve;
    fail = reject;
  });
  return { access, pass, fail };
}

const settledSoon = () => new Promise((r) => setImmediate(r));

test('reads go out beside the access check, and their answers wait for it to pass', async () => {
  const inner = new MemoryObjectStore();
  inner.objects.set('nix-cache-info', {
    body: Buffer.from('StoreDir: /nix/store\n'),
    contentType: 't',
    lastModified: new Date(),
  });
  const check = pendingCheck();
  const lazy = new LazyObjectStore('memory://lazy', () =>
    Promise.resolve({ store: inner, access: check.access }),
  );
  let answered = false;
  const read = lazy.get('nix-cache-info').then((b) => ((answered = true), b));
  const listed: string[] = [];
  const listing = (async () => {
    for await (const o of lazy.list('')) listed.push(o.key);
  })();
  await settledSoon();
  // Both reached the real store before the check answered: one round trip in series, not two.
  assert.deepEqual(
    inner.calls.map((c) => c.op),
    ['get', 'list'],
  );
  assert.equal(answered, false);
  assert.deepEqual(listed, []);
  check.pass();
  assert.equal(String(await read), 'StoreDir: /nix/store\n');
  await listing;
  assert.deepEqual(listed, ['nix-cache-info']);
  await lazy.close();
});

test('writes wait for the access check; a failed check fails reads already answered with its error', async () => {
  const inner = new MemoryObjectStore();
  let closed = 0;
  inner.close = () => {
    closed++;
    return Promise.resolve();
  };
  const check = pendingCheck();
  const lazy = new LazyObjectStore('memory://lazy', () =>
    Promise.resolve({ store: inner, access: check.access }),
  );
  const read = lazy.head('x');
  const listing = (async () => {
    for await (const o of lazy.listTopLevel()) assert.fail(`listed ${o.key} from an unchecked target`);
  })();
  const write = lazy.putBytes('x', 'body', { contentType: 't' });
  await settledSoon();
  // The head was answered (undefined), but nothing was written before the check passed.
  assert.ok(!inner.calls.some((c) => c.op === 'putBytes'));
  check.fail(new StorageError('the listing of bucket "b" came back as something that is not an S3 listing'));
  await assert.rejects(read, /not an S3 listing/);
  await assert.rejects(listing, /not an S3 listing/);
  await assert.rejects(write, /not an S3 listing/);
  await assert.rejects(lazy.get('y'), /not an S3 listing/);
  assert.ok(!inner.calls.some((c) => c.op === 'putBytes'));
  assert.equal(inner.objects.size, 0);
  await lazy.close();
  assert.equal(closed, 1, 'the store whose check failed is closed once');
});

test('a transient failure of the access check opens the store again at the next call', async () => {
  let opened = 0;
  const inner = new MemoryObjectStore();
  const lazy = new LazyObjectStore('memory://lazy', () => {
    opened++;
    const access =
      opened === 1
        ? Promise.reject(
            new StorageError('connection refused', { code: 'E_STORAGE_UNREACHABLE', transient: true }),
          )
        : Promise.resolve();
    return Promise.resolve({ store: inner, access });
  });
  await assert.rejects(lazy.head('x'), /connection refused/);
  await settledSoon();
  await lazy.putBytes('x', 'body', { contentType: 't' });
  assert.equal((await lazy.head('x'))?.size, 4);
  assert.equal(opened, 2);
  await lazy.close();
});
