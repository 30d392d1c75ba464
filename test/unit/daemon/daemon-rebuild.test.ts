// runDaemon after its database was healed (src/state/heal.ts): the fresh file carries a rebuild
// note, and the daemon scans the store once even with scan_on_startup = false, because the queue
// that knew what was waiting is gone. A real (healed) SQLite file, a hand-written uploader.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runDaemon } from '../../../src/daemon/daemon.js';
import { UploadWorker } from '../../../src/daemon/worker.js';
import { silentLogger } from '../../../src/log.js';
import { PresenceCache } from '../../../src/state/presence.js';
import { UploadQueue } from '../../../src/state/queue.js';
import { uploadReport as okReport } from '../../helpers/upload-report.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loft-rebuild-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('a healed database is rebuilt by one scan of the store, whatever scan_on_startup says', async () => {
  const store = join(dir, 'store');
  await mkdir(store);
  const db = join(dir, 'cache.db');
  writeFileSync(db, 'damaged '.repeat(1000));
  const cache = PresenceCache.open(db, { target: 't', logger: silentLogger() }); // heals
  const queue = UploadQueue.open(db);
  const uploaded: string[] = [];
  let scans = 0;
  const deps = {
    queue,
    cache,
    upload: (paths: string[]) => {
      uploaded.push(...paths);
      return Promise.resolve(okReport(paths));
    },
    listValidPaths: () => {
      scans++;
      return Promise.resolve([`${store}/${'a'.repeat(32)}-lost-from-the-queue`]);
    },
    logger: silentLogger(),
  };
  const opts = {
    storeDir: store,
    uploadDerivations: false,
    scanOnStartup: false,
    populateCacheOnStartup: false,
    pollMs: 20,
  };
  try {
    for (let run = 0; run < 2; run++) {
      const stop = new AbortController();
      const running = runDaemon(deps, opts, stop.signal);
      const end = Date.now() + 5000;
      while (run === 0 && uploaded.length === 0 && Date.now() < end) await sleep(20);
      await sleep(100);
      stop.abort();
      await running;
    }
    assert.deepEqual(uploaded, [`${store}/${'a'.repeat(32)}-lost-from-the-queue`]);
    assert.equal(scans, 1, 'one scan: the note is cleared once the store is queued');
    assert.equal(cache.getNote('rebuild'), '');
  } finally {
    queue.close();
    cache.close();
  }
});

test('the worker hands corruption reported while running to onDatabaseDamaged and stops', async () => {
  const queue = UploadQueue.open(join(dir, 'q-damaged.db'));
  const damaged: unknown[] = [];
  let batches = 0;
  const worker = new UploadWorker({
    queue,
    upload: () => {
      batches++;
      return Promise.reject(
        Object.assign(new Error('database disk image is malformed'), { code: 'SQLITE_CORRUPT' }),
      );
    },
    onDatabaseDamaged: (err) => damaged.push(err),
    pollMs: 20,
    batchRetry: { baseMs: 10, maxMs: 10 },
  });
  try {
    queue.enqueue([`/nix/store/${'b'.repeat(32)}-x`]);
    worker.start();
    const end = Date.now() + 3000;
    while (damaged.length === 0 && Date.now() < end) await sleep(10);
    await sleep(100);
    assert.equal(damaged.length, 1);
    assert.equal(batches, 1, 'no batch after the damage: the daemon heals and starts again');
    assert.equal(queue.counts().pending, 1, 'the path is still queued');
  } finally {
    await worker.stop(0);
    queue.close();
  }
});
