// runDaemon's wiring with a real queue and presence cache (temp SQLite file), a temp directory as
// the store, and a hand-written uploader: the scan runs once, new entries flow to the uploader, and
// a stop request ends it with the queue kept.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PresenceCache } from '../../../src/state/presence.js';
import { runDaemon, type DaemonDeps } from '../../../src/daemon/daemon.js';
import { UploadQueue } from '../../../src/state/queue.js';
import { silentLogger } from '../../../src/log.js';
import { uploadReport as okReport } from '../../helpers/upload-report.js';

const HASH = (c: string) => c.repeat(32);

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(20);
}

void describe('runDaemon', () => {
  let dir: string;
  let store: string;
  let queue: UploadQueue;
  let cache: PresenceCache;
  const uploaded: string[] = [];
  let scans = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loft-daemon-unit-'));
    store = join(dir, 'store');
    await mkdir(store);
    queue = UploadQueue.open(join(dir, 'cache.db'));
    cache = PresenceCache.open(join(dir, 'cache.db'), { target: 'file:///t' });
  });
  after(async () => {
    queue.close();
    cache.close();
    await rm(dir, { recursive: true, force: true });
  });

  const deps = (): DaemonDeps => ({
    queue,
    cache,
    upload: (paths) => {
      uploaded.push(...paths);
      return Promise.resolve(okReport(paths));
    },
    listValidPaths: () => {
      scans++;
      return Promise.resolve([`${store}/${HASH('a')}-old`]);
    },
    logger: silentLogger(),
  });
  const opts = () => ({
    storeDir: store,
    uploadDerivations: false,
    scanOnStartup: true,
    populateCacheOnStartup: false,
    pollMs: 50,
  });

  void test('first start: scans once, uploads the scan and new store entries, stops on request', async () => {
    const stop = new AbortController();
    const running = runDaemon(deps(), opts(), stop.signal);
    await until(() => uploaded.length === 1);
    assert.deepEqual(uploaded, [`${store}/${HASH('a')}-old`]);
    assert.equal(cache.getFlag('initial_scan_complete'), true);
    const fresh = `${store}/${HASH('b')}-new`;
    await mkdir(fresh);
    await until(() => uploaded.length === 2);
    assert.equal(uploaded[1], fresh);
    stop.abort();
    await running;
    assert.deepEqual(queue.counts(), { pending: 0, parked: 0 });
    assert.ok(Number(queue.getState('last_watch_at')) > 0);
  });

  void test('new store entries are uploaded ahead of the scan backlog, a scanned one seen again moves up', async () => {
    const backlogDir = await mkdtemp(join(dir, 'backlog-'));
    const bigStore = join(backlogDir, 'store');
    await mkdir(bigStore);
    const bigQueue = UploadQueue.open(join(backlogDir, 'cache.db'));
    const bigCache = PresenceCache.open(join(backlogDir, 'cache.db'), { target: 'file:///t' });
    const late = `${bigStore}/${HASH('z')}-scanned-then-built`;
    const scanned = Array.from({ length: 1000 }, (_, i) => `${bigStore}/${String(i).padStart(32, '0')}-s`);
    const seen: Array<{ path: string; backlogLeft: number }> = [];
    const stop = new AbortController();
    const running = runDaemon(
      {
        ...deps(),
        queue: bigQueue,
        cache: bigCache,
        listValidPaths: () => Promise.resolve([...scanned, late]),
        upload: async (paths) => {
          await sleep(20); // a batch takes time: the backlog drains in about 4 s
          const backlogLeft = bigQueue.laneCounts().backlog;
          for (const path of paths) seen.push({ path, backlogLeft });
          return okReport(paths);
        },
      },
      { ...opts(), storeDir: bigStore, batchSize: 5 },
      stop.signal,
    );
    await until(() => bigCache.getFlag('initial_scan_complete'));
    const built = [`${bigStore}/${HASH('y')}-built`, late];
    for (const p of built) await mkdir(p);
    await until(() => built.every((p) => seen.some((s) => s.path === p)));
    stop.abort();
    await running;
    for (const p of built) {
      const at = seen.find((s) => s.path === p);
      assert.ok(at && at.backlogLeft >= 500, `${p} uploaded while ${at?.backlogLeft} scanned paths waited`);
    }
    bigQueue.close();
    bigCache.close();
  });

  void test('second start: no scan; paths queued while it was down (another process) are uploaded', async () => {
    queue.enqueue([`${store}/${HASH('c')}-queued`]);
    const stop = new AbortController();
    const running = runDaemon(deps(), opts(), stop.signal);
    await until(() => uploaded.includes(`${store}/${HASH('c')}-queued`));
    stop.abort();
    await running;
    assert.equal(scans, 1);
    assert.ok(uploaded.includes(`${store}/${HASH('c')}-queued`));
  });
});
