// The uploader's side of mark, wait, sweep, over the in-memory object store and a real SQLite
// presence cache: condemned paths are uploaded again, doomed ones block their referrers, a doom
// that appears during an upload stops the commit, NAR keys are never reused, and stale presence
// rows are dropped once prunes ran while the host was away.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { PresenceCache } from '../../../src/state/presence.js';
import { sha256Hash } from '../../../src/format/hash.js';
import {
  BUCKET_GRACE_KEY,
  CLOCK_KEY,
  newBucketGrace,
  renderBucketGrace,
  renderState,
  type StateBody,
} from '../../../src/format/loft-state.js';
import { parseNarInfo } from '../../../src/format/narinfo.js';
import type { PathInfo } from '../../../src/format/path-info.js';
import { silentLogger } from '../../../src/log.js';
import { PruneGuard } from '../../../src/upload/prune-guard.js';
import { uploadClosure, type UploadClosureDeps } from '../../../src/upload/upload-closure.js';
import { MemoryObjectStore } from '../../helpers/memory-object-store.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

const GRACE_MS = 3_600_000; // settle: 15 min
const p = (c: string, name: string) => `/nix/store/${c.repeat(32)}-${name}`;
const hashOf = (path: string) => path.slice(11, 43);
const nars = new Map<string, Buffer>();
function info(path: string, refs: string[]): PathInfo {
  const nar = Buffer.from(`nar of ${path}`);
  nars.set(path, nar);
  return {
    path,
    hashPart: hashOf(path),
    narHash: sha256Hash(createHash('sha256').update(nar).digest()),
    narSize: nar.length,
    references: refs,
    signatures: [],
  };
}
const dep = info(p('0', 'dep'), []);
const app = info(p('1', 'app'), [dep.path]);

async function setup() {
  const dir = await mkdtemp(join(tmpdir(), 'loft-guard-'));
  dirs.push(dir);
  const store = new MemoryObjectStore();
  const cache = PresenceCache.open(join(dir, 'cache.db'), { target: 'memory://test' });
  let now = 0;
  let wall = Date.now();
  const guard = new PruneGuard({
    store,
    cache,
    logger: silentLogger(),
    graceMs: GRACE_MS,
    clock: () => now,
    wallClock: () => wall,
  });
  const byPath = new Map([dep, app].map((i) => [i.path, i]));
  const deps: UploadClosureDeps = {
    store,
    cache,
    queryPathInfos: (ps) =>
      Promise.resolve(
        [...new Set(ps.flatMap((x) => [x, ...byPath.get(x)!.references]))].map((x) => ({
          ok: true as const,
          info: byPath.get(x)!,
        })),
      ),
    dumpNar: (x) => Readable.from([nars.get(x)!]),
    compression: 'none',
    compressionLevel: 0,
    compressionThreads: 1,
    storeDir: '/nix/store',
    signingKey: undefined,
    uploadThreads: 2,
    skipSignedByKeys: [],
    uploadDerivations: false,
    logger: silentLogger(),
    retryBaseMs: 1,
    pruneGuard: guard,
  };
  const state = (name: string, body: StateBody) =>
    store.putBytes(`.loft/prune/${name}.json`, renderState(body), { contentType: 'application/json' });
  const advance = (ms: number) => {
    now += ms;
    wall += ms;
  };
  return { store, cache, deps, state, advance };
}

const narinfoOf = async (store: MemoryObjectStore, path: string) =>
  parseNarInfo((await store.get(`${hashOf(path)}.narinfo`))!.toString(), '/nix/store');

describe('uploads beside prunes of other hosts', () => {
  test('a present but condemned dependency is uploaded again, under a new NAR key', async () => {
    const { store, cache, deps, state } = await setup();
    await uploadClosure({ paths: [dep.path], explicit: true, dryRun: false }, deps);
    const firstUrl = (await narinfoOf(store, dep.path)).url;
    await state('mark-1', { kind: 'mark', host: 'b', paths: [hashOf(dep.path)] });
    assert.ok(cache.has(hashOf(dep.path)));
    const report = await uploadClosure({ paths: [app.path], explicit: true, dryRun: false }, deps);
    assert.deepEqual(report.uploaded.map((u) => u.path).sort(), [dep.path, app.path].sort());
    const secondUrl = (await narinfoOf(store, dep.path)).url;
    assert.notEqual(secondUrl, firstUrl, 'a NAR key is never written twice');
    assert.ok(store.objects.has(firstUrl) && store.objects.has(secondUrl));
  });

  test('a doomed dependency blocks its referrer: nothing that relies on it is published', async () => {
    const { store, deps, state } = await setup();
    await uploadClosure({ paths: [dep.path], explicit: true, dryRun: false }, deps);
    await state('doom-1', { kind: 'doom', host: 'b', paths: [{ h: hashOf(dep.path), marked: 1 }] });
    const report = await uploadClosure({ paths: [app.path], explicit: true, dryRun: false }, deps);
    assert.equal(report.complete, false);
    assert.deepEqual(report.failed.map((f) => f.code).sort(), ['E_DEPENDENCY_FAILED', 'E_PRUNE_CONFLICT']);
    assert.equal(store.objects.has(`${hashOf(app.path)}.narinfo`), false);
  });

  test('a doom that appears after the batch looked is seen by the re-check before the commit', async () => {
    const { store, deps, state, advance } = await setup();
    await uploadClosure({ paths: [dep.path], explicit: true, dryRun: false }, deps);
    await store.putBytes(CLOCK_KEY, 'x', { contentType: 'text/plain' }); // so app's batch lists
    // app's NAR upload takes long (settle/2 passes); meanwhile a prune dooms dep.
    deps.dumpNar = (x) =>
      Readable.from(
        (async function* () {
          advance(8 * 60_000);
          await state('doom-2', { kind: 'doom', host: 'b', paths: [{ h: hashOf(dep.path), marked: 1 }] });
          yield nars.get(x)!;
        })(),
      );
    const report = await uploadClosure({ paths: [app.path], explicit: true, dryRun: false }, deps);
    assert.deepEqual(
      report.failed.map((f) => f.code),
      ['E_PRUNE_CONFLICT'],
    );
    assert.equal(store.objects.has(`${hashOf(app.path)}.narinfo`), false);
  });

  test('presence answers older than half the grace period are not published on', async () => {
    const { store, deps, advance } = await setup();
    await uploadClosure({ paths: [dep.path], explicit: true, dryRun: false }, deps);
    deps.dumpNar = (x) =>
      Readable.from(
        (function* () {
          advance(GRACE_MS / 2);
          yield nars.get(x)!;
        })(),
      );
    const report = await uploadClosure({ paths: [app.path], explicit: true, dryRun: false }, deps);
    assert.deepEqual(
      report.failed.map((f) => f.code),
      ['E_PRUNE_CONFLICT'],
    );
    assert.equal(store.objects.has(`${hashOf(app.path)}.narinfo`), false);
  });

  test('presence rows are checked again when prunes ran while this host was away', async () => {
    const { store, cache, deps, advance } = await setup();
    await store.putBytes(CLOCK_KEY, 'x', { contentType: 'text/plain' });
    await uploadClosure({ paths: [dep.path], explicit: true, dryRun: false }, deps);
    // Another host deleted dep long ago; the gone object that said so is gone as well.
    await store.deleteMany([`${hashOf(dep.path)}.narinfo`]);
    advance(GRACE_MS);
    await store.putBytes(CLOCK_KEY, 'y', { contentType: 'text/plain' }); // a prune ran meanwhile
    store.objects.get(CLOCK_KEY)!.lastModified = new Date(Date.now() + 5000);
    assert.ok(cache.has(hashOf(dep.path)), 'the row still claims dep');
    const report = await uploadClosure({ paths: [app.path], explicit: true, dryRun: false }, deps);
    assert.deepEqual(report.uploaded.map((u) => u.path).sort(), [dep.path, app.path].sort());
    assert.ok(store.objects.has(`${hashOf(dep.path)}.narinfo`));
  });

  test("issue 22: the bucket's grace, shorter than this host's, makes its rows stale after half of it", async () => {
    const { store, cache, deps, advance } = await setup();
    await store.putBytes(CLOCK_KEY, 'x', { contentType: 'text/plain' });
    await uploadClosure({ paths: [dep.path], explicit: true, dryRun: false }, deps);
    // A host with a 1 min grace recorded it, then marked, doomed and swept dep; its state objects
    // went with their work. Only the record is left. This host's own grace is an hour.
    await store.putBytes(BUCKET_GRACE_KEY, renderBucketGrace(newBucketGrace(60_000)), {
      contentType: 'application/json',
    });
    await store.deleteMany([`${hashOf(dep.path)}.narinfo`]);
    advance(31_000);
    await store.putBytes(CLOCK_KEY, 'y', { contentType: 'text/plain' });
    store.objects.get(CLOCK_KEY)!.lastModified = new Date(Date.now() + 5000);
    const report = await uploadClosure({ paths: [app.path], explicit: true, dryRun: false }, deps);
    assert.deepEqual(report.uploaded.map((u) => u.path).sort(), [dep.path, app.path].sort());
    assert.ok(store.objects.has(`${hashOf(dep.path)}.narinfo`), 'dep uploaded again, not trusted');
    assert.ok(cache.has(hashOf(dep.path)));
  });

  test('a grace the bucket recorded while the batch ran judges its age at the commit', async () => {
    const { store, deps, advance } = await setup();
    // While the first NAR is read, another host's first prune records a 15 min grace, and 10 min
    // pass: past the re-listing's settle/2 of this host's hour, past half of the recorded grace.
    let first = true;
    deps.dumpNar = (x) =>
      Readable.from(
        (function* () {
          if (first) {
            first = false;
            void store.putBytes(BUCKET_GRACE_KEY, renderBucketGrace(newBucketGrace(15 * 60_000)), {
              contentType: 'application/json',
            });
            advance(10 * 60_000);
          }
          yield nars.get(x)!;
        })(),
      );
    const report = await uploadClosure({ paths: [dep.path], explicit: true, dryRun: false }, deps);
    assert.deepEqual(
      report.failed.map((f) => f.code),
      ['E_PRUNE_CONFLICT'],
    );
    assert.equal(store.objects.has(`${hashOf(dep.path)}.narinfo`), false);
  });

  test('a run the presence cache answers lists nothing', async () => {
    const { store, deps } = await setup();
    await uploadClosure({ paths: [app.path], explicit: true, dryRun: false }, deps);
    store.calls.length = 0;
    await uploadClosure({ paths: [app.path], explicit: true, dryRun: false }, deps);
    assert.deepEqual(store.calls, []);
  });
});
