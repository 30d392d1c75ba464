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
