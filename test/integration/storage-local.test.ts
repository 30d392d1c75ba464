// LocalObjectStore on a real temporary directory.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { AbortedError, StorageError } from '../../src/errors.js';
import { LOCAL_TEMP_DIR, LocalObjectStore } from '../../src/storage/local-object-store.js';
import { CONTENT_TYPE_NAR, CONTENT_TYPE_NARINFO } from '../../src/format/bucket-layout.js';

let root: string;
let store: LocalObjectStore;
const nar = { contentType: CONTENT_TYPE_NAR };

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'loft-local-store-'));
  store = new LocalObjectStore(join(root, 'cache')); // created on first write
});
after(async () => {
  await store.close();
  await rm(root, { recursive: true, force: true });
});

async function keys(prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out.sort();
}

async function tempFiles(): Promise<string[]> {
  return readdir(join(root, 'cache', LOCAL_TEMP_DIR)).catch(() => []);
}

describe('LocalObjectStore', () => {
  test('an absent root reads as empty', async () => {
    assert.equal(await store.head('nix-cache-info'), undefined);
    assert.equal(await store.get('nix-cache-info'), undefined);
    assert.deepEqual(await keys(), []);
  });

  test('putBytes, head, get use the bucket layout on disk', async () => {
    await store.putBytes('abc.narinfo', 'StorePath: x\n', { contentType: CONTENT_TYPE_NARINFO });
    await store.putBytes('nar/abc.nar.zst', Buffer.from([0, 1, 2, 255]), nar);
    assert.equal(await readFile(join(root, 'cache', 'abc.narinfo'), 'utf8'), 'StorePath: x\n');
    assert.deepEqual([...(await readFile(join(root, 'cache', 'nar', 'abc.nar.zst')))], [0, 1, 2, 255]);
    const info = await store.head('nar/abc.nar.zst');
    assert.equal(info?.size, 4);
    assert.equal(info?.key, 'nar/abc.nar.zst');
    assert.equal((await store.get('abc.narinfo'))?.toString(), 'StorePath: x\n');
    assert.equal(await store.head('nar'), undefined, 'a directory is not an object');
  });

  test('putStream writes a multi-chunk body byte-identical', async () => {
    const data = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
    const chunks = [data.subarray(0, 1000), data.subarray(1000, 2_000_000), data.subarray(2_000_000)];
    const acked: Array<[number, boolean]> = [];
    await store.putStream('nar/big.nar.zst', Readable.from(chunks), {
      ...nar,
      onStored: (n) => acked.push([n, existsSync(join(root, 'cache', 'nar', 'big.nar.zst'))]),
    });
    assert.deepEqual(acked, [[data.length, true]], 'acknowledged once, when the file is in place');
    assert.ok((await store.get('nar/big.nar.zst'))?.equals(data));
    assert.deepEqual(await tempFiles(), []);
  });

  test('list walks subdirectories, filters by prefix, skips temporary files', async () => {
    await writeFile(join(root, 'cache', LOCAL_TEMP_DIR, '.tmp-leftover'), 'half');
    assert.deepEqual(await keys(), ['abc.narinfo', 'nar/abc.nar.zst', 'nar/big.nar.zst']);
    assert.deepEqual(await keys('nar/'), ['nar/abc.nar.zst', 'nar/big.nar.zst']);
    assert.deepEqual(await keys('nar/b'), ['nar/big.nar.zst']);
    assert.deepEqual(await keys('a'), ['abc.narinfo']);
    assert.deepEqual(await keys('zzz'), []);
    await rm(join(root, 'cache', LOCAL_TEMP_DIR, '.tmp-leftover'));
  });

  test('a failing stream leaves neither the final file nor a temporary file', async () => {
    const body = new PassThrough();
    const boom = new Error('NAR source vanished');
    const put = store.putStream('nar/broken.nar.zst', body, nar);
    body.write(Buffer.alloc(200_000, 1));
    setTimeout(() => body.destroy(boom), 50);
    await assert.rejects(put, (err) => err === boom);
    assert.equal(await store.head('nar/broken.nar.zst'), undefined);
    assert.deepEqual(await tempFiles(), []);
  });

  test('a failed rewrite keeps the previous complete file', async () => {
    const body = new PassThrough();
    const put = store.putStream('nar/abc.nar.zst', body, nar);
    body.write(Buffer.alloc(100_000, 9));
    setTimeout(() => body.destroy(new Error('cut off')), 50);
    await assert.rejects(put, /cut off/);
    assert.deepEqual([...((await store.get('nar/abc.nar.zst')) ?? [])], [0, 1, 2, 255]);
    assert.deepEqual(await tempFiles(), []);
  });

  test('an abort signal stops the write with AbortedError and cleans up', async () => {
    const body = new PassThrough();
    const controller = new AbortController();
    const put = store.putStream('nar/cancelled.nar', body, { ...nar, signal: controller.signal });
    body.write(Buffer.alloc(50_000, 2));
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(put, (err) => err instanceof AbortedError);
    assert.equal(await store.head('nar/cancelled.nar'), undefined);
    assert.deepEqual(await tempFiles(), []);
    const aborted = AbortSignal.abort();
    await assert.rejects(store.putBytes('x', 'x', { ...nar, signal: aborted }), AbortedError);
    assert.equal(await store.head('x'), undefined);
  });

  test('keys that could leave the root or reach temporary files are refused', async () => {
    for (const key of [
      '../escape',
      'nar/../../escape',
      '/etc/passwd',
      '',
      'a//b',
      `${LOCAL_TEMP_DIR}/x`,
      './x',
    ]) {
      await assert.rejects(store.putBytes(key, 'x', nar), StorageError, key);
      await assert.rejects(store.head(key), StorageError, key);
    }
    assert.deepEqual(await readdir(root), ['cache']);
  });

  test('deleteMany unlinks and ignores keys that are already gone', async () => {
    await store.deleteMany(['nar/big.nar.zst', 'abc.narinfo', 'nar/never-there']);
    assert.deepEqual(await keys(), ['nar/abc.nar.zst']);
    await store.deleteMany([]);
    assert.deepEqual(await keys(), ['nar/abc.nar.zst']);
  });

  test('a directory removed after a write is made again by the next one', async () => {
    const own = new LocalObjectStore(join(root, 'remade'));
    await own.putBytes('nar/one.nar.zst', 'one', nar);
    // Someone cleans the cache by hand while loft runs: both the key's directory and the temporary one go.
    await rm(join(root, 'remade', 'nar'), { recursive: true });
    await rm(join(root, 'remade', LOCAL_TEMP_DIR), { recursive: true });
    await own.putStream('nar/two.nar.zst', Readable.from([Buffer.from('two')]), nar);
    await own.putBytes('two.narinfo', 'StorePath: y\n', { contentType: CONTENT_TYPE_NARINFO });
    assert.equal((await own.get('nar/two.nar.zst'))?.toString(), 'two');
    assert.equal((await own.get('two.narinfo'))?.toString(), 'StorePath: y\n');
    assert.equal(await own.head('nar/one.nar.zst'), undefined);
  });

  test('two stores writing one directory at once never share a temporary file', async () => {
    const dir = join(root, 'shared');
    const [a, b] = [new LocalObjectStore(dir), new LocalObjectStore(dir)];
    const writes = [];
    for (let i = 0; i < 40; i++) {
      writes.push(a.putBytes(`nar/a${i}.nar.zst`, `a${i}`.repeat(1000), nar));
      writes.push(b.putStream(`nar/b${i}.nar.zst`, Readable.from([Buffer.from(`b${i}`.repeat(1000))]), nar));
    }
    await Promise.all(writes);
    for (let i = 0; i < 40; i++) {
      assert.equal((await a.get(`nar/a${i}.nar.zst`))?.toString(), `a${i}`.repeat(1000));
      assert.equal((await b.get(`nar/b${i}.nar.zst`))?.toString(), `b${i}`.repeat(1000));
    }
    assert.deepEqual(await readdir(join(dir, LOCAL_TEMP_DIR)), []);
  });

  test('a root that is a file gives a StorageError naming the directory', async () => {
    const file = join(root, 'not-a-dir');
    await writeFile(file, 'x');
    const bad = new LocalObjectStore(file);
    await assert.rejects(bad.putBytes('a', 'a', nar), (err) => {
      assert.ok(err instanceof StorageError);
      assert.equal(err.code, 'E_STORAGE');
      assert.ok(err.message.includes(file));
      return true;
    });
    await assert.rejects(bad.putStream('b', Readable.from([Buffer.from('b')]), nar), StorageError);
  });
});
