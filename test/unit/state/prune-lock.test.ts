// The prune lock in the presence cache's SQLite file: who may take it over, and when.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PresenceCache } from '../../../src/state/presence.js';
import { PruneDb } from '../../../src/state/prune-db.js';

let dir: string;
let cache: PresenceCache;
let db: PruneDb;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loft-prune-lock-'));
  cache = PresenceCache.open(join(dir, 'cache.db'), { target: 'lock-test' });
  db = PruneDb.open(cache.path, cache.target);
});
after(async () => {
  db.close();
  cache.close();
  await rm(dir, { recursive: true, force: true });
});

test('a lock of a live process on this host holds; a lock of a dead one is taken over at once', () => {
  const alive = new Set([100]);
  const isAlive = (pid: number) => alive.has(pid);
  assert.equal(db.tryLock({ pid: 100, host: 'here' }, 0, isAlive), undefined);
  assert.deepEqual(db.tryLock({ pid: 200, host: 'here' }, 1000, isAlive), { pid: 100, host: 'here' });
  alive.delete(100); // killed with SIGKILL: it never unlocked
  assert.equal(db.tryLock({ pid: 200, host: 'here' }, 2000, isAlive), undefined, 'dead owner, taken over');
  db.unlock();
});

test("another host's lock is never judged by this host's process table, only by its age", () => {
  const isAlive = () => false;
  assert.equal(db.tryLock({ pid: 1, host: 'elsewhere' }, 0, isAlive), undefined);
  assert.deepEqual(db.tryLock({ pid: 2, host: 'here' }, 1000, isAlive), { pid: 1, host: 'elsewhere' });
  assert.equal(db.tryLock({ pid: 2, host: 'here' }, 7 * 3_600_000, isAlive), undefined, 'stale after 6 h');
  db.unlock();
});

test('the default liveness check sees a real process exit', async () => {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  const pid = child.pid!;
  assert.equal(db.tryLock({ pid, host: 'here' }), undefined);
  assert.deepEqual(db.tryLock({ pid: process.pid, host: 'here' }), { pid, host: 'here' }, 'child alive');
  child.kill('SIGKILL');
  await new Promise((r) => child.on('close', r));
  assert.equal(db.tryLock({ pid: process.pid, host: 'here' }), undefined, 'child gone');
  db.unlock();
});
