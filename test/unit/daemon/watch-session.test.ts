// WatchSession (the store watching of `loft --watch-exec`) over a temp directory standing in for
// the store, with a hand-written uploader (our UploadBatch type) playing Nix's validity answers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WatchSession } from '../../../src/daemon/watch-session.js';
import type { UploadBatch } from '../../../src/daemon/worker.js';
import { silentLogger } from '../../../src/log.js';
import type { UploadReport } from '../../../src/upload/upload-closure.js';
import { uploadReport as report } from '../../helpers/upload-report.js';

const name = (n: number) => `${'c'.repeat(31)}${'acdfghijkl'[n]}-p${n}`;

/** An uploader for which the paths in `invalid` are not valid (yet); records every call. */
function fakeUploader(invalid: Set<string>) {
  const calls: string[][] = [];
  const upload: UploadBatch = (paths) => {
    calls.push([...paths].sort());
    const failed = paths
      .filter((p) => invalid.has(p))
      .map((path) => ({ path, code: 'E_INVALID_PATH' as const, message: 'not valid' }));
    return Promise.resolve(report(paths, failed));
  };
  return { calls, upload };
}

/** A started session on the test store with a short quiet time. */
async function startSession(storeDir: string, upload: UploadBatch): Promise<WatchSession> {
  const session = new WatchSession({
    storeDir,
    uploadDerivations: false,
    upload,
    logger: silentLogger(),
    quietMs: 20,
  });
  await session.start();
  return session;
}

void describe('WatchSession', () => {
  let store: string;
  before(async () => {
    store = await mkdtemp(join(tmpdir(), 'loft-watch-session-'));
  });
  after(async () => {
    await rm(store, { recursive: true, force: true });
  });

  test('what was in the store before start is never uploaded; new paths are, at once', async () => {
    await writeFile(join(store, name(0)), 'old');
    const { calls, upload } = fakeUploader(new Set());
    const session = await startSession(store, upload);
    await writeFile(join(store, name(1)), 'new');
    const end = Date.now() + 3000;
    while (calls.length === 0 && Date.now() < end) await sleep(10);
    assert.deepEqual(calls, [[join(store, name(1))]], 'uploaded while the command still runs');
    const { report: r } = await session.finish();
    assert.deepEqual(
      r.uploaded.map((u) => u.path),
      [join(store, name(1))],
    );
  });

  test('a path not valid at its hint is tried again at the end, and uploaded once valid', async () => {
    const p = join(store, name(2));
    const invalid = new Set([p]);
    const { calls, upload } = fakeUploader(invalid);
    const session = await startSession(store, upload);
    await writeFile(p, 'registered later');
    const end = Date.now() + 3000;
    while (calls.length === 0 && Date.now() < end) await sleep(10);
    assert.deepEqual(calls, [[p]]);
    invalid.delete(p); // Nix registers it; no further event arrives
    const { report: r } = await session.finish();
    assert.deepEqual(calls, [[p], [p]]);
    assert.deepEqual(
      r.uploaded.map((u) => u.path),
      [p],
    );
    assert.deepEqual(r.failed, []);
  });

  test('a path that never becomes valid (a failed build) is neither uploaded nor a failure', async () => {
    const p = join(store, name(3));
    const { upload } = fakeUploader(new Set([p]));
    const session = await startSession(store, upload);
    await writeFile(p, 'never registered');
    const { report: r } = await session.finish();
    assert.deepEqual(r.uploaded, []);
    assert.deepEqual(r.failed, []);
  });

  test('counts: a path uploaded in an earlier round is not "already present" in a later one', async () => {
    const [a, b, c] = [4, 5, 6].map((n) => join(store, name(n))) as [string, string, string];
    const rounds: UploadReport[] = [
      report([a], []), // a uploaded
      { ...report([], []), requested: [b], alreadyPresent: 1 }, // b's closure: a, present by now
      { ...report([], []), requested: [c], alreadyPresent: 1 }, // c: in the cache before this run
    ];
    rounds[1]!.uploaded = [{ path: b, narKey: 'k', narSize: 1, fileSize: 1 }];
    const upload: UploadBatch = () => Promise.resolve(rounds.shift()!);
    const session = await startSession(store, upload);
    for (const p of [a, b, c]) {
      const before = rounds.length;
      await writeFile(p, 'x');
      const end = Date.now() + 3000;
      while (rounds.length === before && Date.now() < end) await sleep(10);
    }
    const { report: r } = await session.finish();
    assert.deepEqual(
      r.uploaded.map((u) => u.path),
      [a, b],
    );
    assert.equal(r.alreadyPresent, 1, 'only c');
  });
});
