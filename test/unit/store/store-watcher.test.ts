// The store watcher against a real temporary directory and real fs events (inotify on Linux).
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { hintedPath } from '../../../src/store/store-hints.js';
import { StoreWatcher, type StoreWatcherOptions } from '../../../src/store/store-watcher.js';

const HASH = 'xz9ln6jvv0rpb4q3wb1azxcsig4vqrkm';
const hash = (i: number) =>
  HASH.slice(0, 28) +
  String(i)
    .padStart(4, '0')
    .replace(/[0-9]/g, (d) => 'abcdfghijk'[Number(d)]!);

void describe('hintedPath', () => {
  const S = '/nix/store';
  for (const [name, expected] of [
    [`${HASH}-hello-2.12`, `${S}/${HASH}-hello-2.12`],
    [`${HASH}-hello-2.12.lock`, `${S}/${HASH}-hello-2.12`],
    [`${HASH}-hello.drv`, undefined],
    [`${HASH}-hello.drv.lock`, undefined],
    [`${HASH}-hello.drv.chroot`, undefined],
    [`${HASH}-hello.check`, undefined],
    ['.links', undefined],
    ['add-1234-1', undefined],
    ['trash-1234', undefined],
    ['.tmp-abc', undefined],
    ['xyz-short-hash', undefined],
  ] as const) {
    void test(`${name} -> ${String(expected)}`, () => {
      assert.equal(hintedPath(name, S, false), expected);
    });
  }
  void test('.drv files count when derivations are uploaded', () => {
    assert.equal(hintedPath(`${HASH}-hello.drv`, S, true), `${S}/${HASH}-hello.drv`);
  });
});

void describe('StoreWatcher on a temporary directory', () => {
  let root: string;
  let n = 0;
  let current: StoreWatcher | undefined;
  const batches: string[][] = [];

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'loft-watch-'));
  });
  afterEach(async () => {
    await current?.stop();
    current = undefined;
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function freshStore(): Promise<string> {
    const dir = join(root, `store${n++}`);
    await mkdir(dir);
    batches.length = 0;
    return dir;
  }
  async function watch(dir: string, extra: Partial<StoreWatcherOptions> = {}): Promise<StoreWatcher> {
    current = new StoreWatcher({
      storeDir: dir,
      onPaths: (p) => batches.push(p),
      uploadDerivations: false,
      quietMs: 100,
      maxDelayMs: 1000,
      reconcileMs: 0,
      ...extra,
    });
    await current.start();
    return current;
  }
  const reported = () => batches.flat().sort();
  async function until(cond: () => boolean, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (!cond() && Date.now() < end) await sleep(20);
  }

  void test('new entries arrive in one batch after a quiet period; scratch names, .drv and removals do not', async () => {
    const dir = await freshStore();
    await writeFile(join(dir, `${hash(0)}-existing`), '');
    await watch(dir);
    const want = [1, 2, 3].map((i) => join(dir, `${hash(i)}-out`));
    for (const p of want) await mkdir(p);
    await writeFile(join(dir, `${hash(4)}-x.drv`), '');
    await mkdir(join(dir, `${hash(5)}-x.drv.chroot`));
    await writeFile(join(dir, `${hash(6)}-building.lock`), ''); // its output does not exist yet
    await mkdir(join(dir, 'add-99-1'));
    await rm(join(dir, `${hash(0)}-existing`));
    await until(() => batches.length > 0);
    await sleep(300);
    assert.equal(batches.length, 1, JSON.stringify(batches));
    assert.deepEqual(reported(), want.sort());
  });

  void test('the removal of X.lock is a hint for X (the moment Nix registered it)', async () => {
    const dir = await freshStore();
    const out = join(dir, `${hash(1)}-built`);
    await mkdir(out);
    await writeFile(`${out}.lock`, '');
    await watch(dir);
    await rm(`${out}.lock`);
    await until(() => batches.length > 0);
    assert.deepEqual(reported(), [out]);
  });

  void test('a steady stream is delivered by the max delay, not held until it ends', async () => {
    const dir = await freshStore();
    await watch(dir, { quietMs: 200, maxDelayMs: 400 });
    const started = Date.now();
    let firstAt: number | undefined;
    const stream = (async () => {
      for (let i = 0; i < 30; i++) {
        await mkdir(join(dir, `${hash(i)}-s`));
        if (firstAt === undefined && batches.length > 0) firstAt = Date.now();
        await sleep(50);
      }
    })();
    await stream;
    await until(() => reported().length === 30);
    assert.ok(
      firstAt !== undefined && firstAt - started < 1200,
      `first batch after ${String(firstAt && firstAt - started)} ms`,
    );
    assert.ok(batches.length >= 2, `batches: ${batches.length}`);
    assert.equal(reported().length, 30);
  });

  void test('a burst of 300 entries is reported completely', async () => {
    const dir = await freshStore();
    await watch(dir);
    const want = Array.from({ length: 300 }, (_, i) => join(dir, `${hash(i)}-burst`));
    await Promise.all(want.map((p) => mkdir(p)));
    await until(() => reported().length >= 300);
    assert.deepEqual(reported(), want.sort());
  });

  void test('reconciliation reports an entry whose event was not delivered', async () => {
    const dir = await freshStore();
    // Batches held for a minute: only the listing can report the entry within the test.
    const w = await watch(dir, { quietMs: 60_000, maxDelayMs: 60_000 });
    const p = join(dir, `${hash(7)}-missed`);
    await mkdir(p);
    assert.equal(await w.reconcile(), 1);
    assert.deepEqual(reported(), [p]);
    assert.equal(await w.reconcile(), 0, 'a second listing reports nothing new');
  });

  void test('the periodic listing is skipped while the directory mtime is unchanged', async () => {
    const dir = await freshStore();
    const w = await watch(dir, { quietMs: 60_000, maxDelayMs: 60_000 });
    // A whole-second mtime, which utimes can set again exactly.
    const old = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
    await utimes(dir, old, old);
    assert.equal(await w.reconcile(), 0);
    const p = join(dir, `${hash(6)}-hidden`);
    await mkdir(p);
    // Put the old mtime back: to the cheap check nothing happened, so the listing is skipped...
    await utimes(dir, old, old);
    assert.equal(await w.reconcile({ skipIfUnchanged: true }), 0);
    // ...and any real change of the directory makes it list and find the entry.
    await writeFile(join(dir, 'x.lock'), '');
    assert.equal(await w.reconcile({ skipIfUnchanged: true }), 1);
    assert.deepEqual(reported(), [p]);
  });

  void test('paths that could not be queued are reported again by the next listing', async () => {
    const dir = await freshStore();
    let failNext = true;
    const w = await watch(dir, {
      quietMs: 60_000,
      maxDelayMs: 60_000,
      onPaths: (p) => {
        if (failNext) {
          failNext = false;
          throw new Error('database is locked');
        }
        batches.push(p);
      },
    });
    const p = join(dir, `${hash(9)}-retry`);
    await mkdir(p);
    assert.equal(await w.reconcile(), 0);
    assert.equal(await w.reconcile(), 1);
    assert.deepEqual(reported(), [p]);
  });

  void test('a path removed and added again between listings is reported again', async () => {
    const dir = await freshStore();
    const p = join(dir, `${hash(10)}-again`);
    await mkdir(p);
    const w = await watch(dir, { quietMs: 60_000, maxDelayMs: 60_000 });
    await rm(p, { recursive: true });
    assert.equal(await w.reconcile(), 0, 'a removal reports nothing');
    await mkdir(p);
    assert.equal(await w.reconcile(), 1);
    assert.deepEqual(reported(), [p]);
  });

  void test('X is new to a listing that saw only X.lock, or X.check and X.drv.chroot', async () => {
    const dir = await freshStore();
    const x = join(dir, `${hash(11)}-built`);
    const y = join(dir, `${hash(12)}-checked`);
    await writeFile(`${x}.lock`, '');
    await mkdir(`${y}.check`);
    await mkdir(join(dir, `${hash(12)}-checked.drv.chroot`));
    const w = await watch(dir, { quietMs: 60_000, maxDelayMs: 60_000 });
    // The listing of the baseline remembered X.lock and dropped the scratch names; X and Y come now.
    await mkdir(x);
    await rm(`${x}.lock`);
    await mkdir(y);
    assert.equal(await w.reconcile(), 2);
    assert.deepEqual(reported(), [x, y].sort());
  });

  void test('the periodic reconciliation runs by itself', async () => {
    const dir = await freshStore();
    await watch(dir, { quietMs: 60_000, maxDelayMs: 60_000, reconcileMs: 200 });
    const p = join(dir, `${hash(8)}-periodic`);
    await mkdir(p);
    await until(() => batches.length > 0, 3000);
    assert.deepEqual(reported(), [p]);
  });

  void test('an entry created while no watcher ran is reported on start (since)', async () => {
    const dir = await freshStore();
    await writeFile(join(dir, `${hash(1)}-old`), '');
    const w = await watch(dir);
    await w.stop();
    current = undefined;
    const stoppedAt = Date.now();
    await sleep(20);
    const p = join(dir, `${hash(2)}-while-down`);
    await mkdir(p);
    assert.deepEqual(batches, []);
    await watch(dir, { since: stoppedAt });
    assert.deepEqual(reported(), [p]);
  });
});
