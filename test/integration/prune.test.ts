// Pruning a real bucket end to end: closures uploaded by the built CLI with the machine's Nix into
// s3rver, some of them aged (their objects' LastModified moved 40 days back in s3rver's data
// directory, which is where s3rver takes LastModified from), pruned, and then real Nix substitutes
// every kept closure with our signature required. Also: an upload of paths that reference an
// expired closure, running while prunes (mark, wait, sweep) delete it, loses nothing; and the CLI's
// `--prune` / `--prune --dry-run` / disabled pruning.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { PresenceCache } from '../../src/state/presence.js';
import { loadConfig } from '../../src/config/load.js';
import { parseNarInfo } from '../../src/format/narinfo.js';
import { silentLogger } from '../../src/log.js';
import { PruneDb } from '../../src/state/prune-db.js';
import { runPrune, type PruneResult, type PruneSettings } from '../../src/prune/prune-run.js';
import { storageTarget } from '../../src/config/storage-target.js';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import { checkBucket } from '../helpers/bucket-invariants.js';
import { buildFixtureClosure, randomSalt, type FixtureCase } from '../helpers/fixtures.js';
import { runLoft } from '../helpers/loft-cli.js';
import { hasNix, nixBin, requireNix } from '../helpers/nix-env.js';
import { startIntegrationEnv, type IntegrationEnv } from '../helpers/integration-env.js';
import { storeOptionsFor, type TestS3 } from '../helpers/s3-server.js';
import type { KeyFiles } from '../helpers/signing-keys.js';
import {
  bucketObjects,
  closureOf,
  deleteLocally,
  hashPartOfPath,
  httpCacheUrl,
  substitute,
  verifyClosure,
  writeConfig,
} from '../helpers/upload-env.js';
import { skipTest } from '../helpers/skip.js';

const DAY = 86_400_000;
/** 14.4 s of grace, 3.6 s of settle: a mark is swept within the test. */
const SWEEP_GRACE_HOURS = 0.004;
const REFERRER_NIX = fileURLToPath(new URL('../fixtures/referrer.nix', import.meta.url));
const SETTINGS = { retentionDays: 30, targetPercentage: 80, orphanGraceHours: 24, graceHours: 0 };
type Fixtures = Record<FixtureCase, string>;

describe('pruning a bucket written by loft, then Nix substitutes what was kept', () => {
  let testEnv: IntegrationEnv | undefined;
  let dir: string;
  let s3: TestS3;
  let key: KeyFiles;
  let config: string;
  let store: S3ObjectStore;
  const built: Fixtures[] = [];
  const builtPaths: string[] = [];

  before(async () => {
    if (!hasNix()) return;
    testEnv = await startIntegrationEnv('loft-prune-it-', 'loft-prune-1');
    ({ dir, s3, key } = testEnv);
    config = await testEnv.config({ extraLoft: 'prune_enabled = true' });
    store = new S3ObjectStore(storeOptionsFor(s3));
  });
  after(async () => {
    if (!hasNix()) return;
    await store?.close();
    await testEnv?.close([...builtPaths, ...built.flatMap((f) => Object.values(f))]);
  });

  async function referrerOf(base: string): Promise<string> {
    const args = ['nix-build', '--no-out-link', REFERRER_NIX, '--argstr', 'base', base];
    const { stdout } = await nixBin([...args, '--argstr', 'salt', randomSalt()]);
    const out = stdout.trim();
    builtPaths.push(out);
    return out;
  }

  async function build(): Promise<Fixtures> {
    const f = await buildFixtureClosure({ largeFileMb: 0 });
    built.push(f);
    return f;
  }

  /** Moves the LastModified of each path's narinfo and NAR `days` back (s3rver reads file mtimes). */
  async function age(paths: string[], days: number): Promise<void> {
    const when = new Date(Date.now() - days * DAY);
    for (const p of paths) {
      const h = hashPartOfPath(p);
      const body = await store.get(`${h}.narinfo`);
      assert.ok(body, `narinfo of ${p}`);
      for (const k of [`${h}.narinfo`, parseNarInfo(body.toString()).url]) await ageKey(k, when);
    }
  }
  async function ageKey(k: string, when: Date): Promise<void> {
    const parts = k.split('/');
    const file = `${parts.pop()}._S3rver_object`;
    await utimes(join(s3.dir!, s3.bucket, ...parts, file), when, when);
  }

  async function prune(settings: PruneSettings = SETTINGS, dbPath?: string): Promise<PruneResult> {
    // The CLI's own database and target, as the daemon would use them (or another host's).
    const { config: cfg } = await loadConfig({ path: config, explicit: true, env: {} });
    const cache = PresenceCache.open(dbPath ?? cfg.localCachePath, { target: storageTarget(cfg.storage) });
    const db = PruneDb.open(cache.path, cache.target);
    try {
      const deps = { store, cache, db, storeDir: '/nix/store', logger: silentLogger() };
      return await runPrune(deps, { dryRun: false, host: 'prune-test', settings });
    } finally {
      db.close();
      cache.close();
    }
  }

  /** Every narinfo left passes checkBucket: its NAR is there as named, its references too. */
  async function assertNothingDangling(): Promise<number> {
    const check = await checkBucket(s3, { publicKey: key.publicKey });
    assert.deepEqual(check.violations, []);
    return check.narinfos;
  }

  test('expired closures go, expired dependencies of kept paths stay, Nix substitutes the rest', async (t) => {
    if (!requireNix(t)) return;
    if (s3.external)
      return skipTest(t, 'in-process-s3', 'reads the in-process s3rver (LOFT_TEST_S3_ENDPOINT is set)');
    const old = await build();
    const fresh = await build();
    const oldRoots = [old.top, old.tree, old.caUser];
    const freshRoots = [fresh.top, fresh.tree, fresh.caUser];
    const up = await runLoft(['-c', config, '--upload-path', ...oldRoots, ...freshRoots]);
    assert.equal(up.code, 0, up.stderr);
    const oldClosure = await closureOf(oldRoots);
    const freshClosure = await closureOf(freshRoots);
    await age(oldClosure, 40);
    await age([fresh.leaf, fresh.mid], 40); // expired, but fresh.top references them
    await store.putBytes('nar/orphan-old.nar.zst', 'x', { contentType: 'application/x-nix-nar' });
    await ageKey('nar/orphan-old.nar.zst', new Date(Date.now() - 2 * DAY));
    await store.putBytes('nar/orphan-young.nar.zst', 'y', { contentType: 'application/x-nix-nar' });
    await store.putBytes('foreign/keep-me.txt', 'z', { contentType: 'text/plain' });
    await ageKey('foreign/keep-me.txt', new Date(Date.now() - 400 * DAY));

    const result = await prune();
    const freshSet = new Set(freshClosure);
    const gone = oldClosure.filter((p) => !freshSet.has(p));
    const plan = result.policy!;
    assert.deepEqual(plan.paths.map((p) => p.hashPart).sort(), gone.map(hashPartOfPath).sort());
    assert.ok(plan.keptBecauseReferenced.includes(hashPartOfPath(fresh.leaf)));
    assert.ok(plan.keptBecauseReferenced.includes(hashPartOfPath(fresh.mid)));
    const objects = await bucketObjects(s3);
    for (const p of gone) assert.ok(!objects.has(`${hashPartOfPath(p)}.narinfo`), `${p} deleted`);
    for (const k of ['nix-cache-info', 'foreign/keep-me.txt', 'nar/orphan-young.nar.zst'])
      assert.ok(objects.has(k), k);
    assert.ok(!objects.has('nar/orphan-old.nar.zst'));
    assert.equal(await assertNothingDangling(), freshClosure.length);

    await deleteLocally(freshClosure, Object.values(fresh));
    await substitute(freshRoots, httpCacheUrl(s3), key.publicKey);
    await verifyClosure(freshRoots, key.publicKey);

    const again = await prune();
    assert.equal(again.counts.narinfosRead, 0, 'a second prune reads no narinfo');
    assert.equal(again.policy?.paths.length, 0);
  });

  test('an upload running during prunes loses nothing', async (t) => {
    if (!requireNix(t)) return;
    if (s3.external)
      return skipTest(t, 'in-process-s3', 'reads the in-process s3rver (LOFT_TEST_S3_ENDPOINT is set)');
    const victim = await build();
    const victimRoots = [victim.top, victim.tree, victim.symlinkOut];
    const up = await runLoft(['-c', config, '--upload-path', ...victimRoots]);
    assert.equal(up.code, 0, up.stderr);
    await age(await closureOf(victimRoots), 40);
    // Each incoming path references a path of the expired closure, which the upload finds present
    // and relies on while the prunes mark, doom and sweep that closure: the race this test is about.
    const referrers: string[] = [];
    for (const base of [victim.top, victim.mid, victim.leaf, victim.symlinkOut]) {
      referrers.push(await referrerOf(base));
    }
    const sweep = { ...SETTINGS, graceHours: SWEEP_GRACE_HOURS };
    // The prunes run as another host would: their own database, so this host's presence rows
    // still claim the expired closure, and only the protocol keeps it from relying on them.
    const otherHost = join(dir, 'other-host.db');
    let stop = false;
    let prunes = 0;
    let swept = 0;
    const loop = (async () => {
      while (!stop) {
        swept += (await prune(sweep, otherHost)).counts.narinfosDeleted;
        prunes++;
        await sleep(500);
      }
    })();
    let waited = 0;
    const uploadReferrer = async (ref: string) => {
      for (let attempt = 0; ; attempt++) {
        const run = await runLoft(['-c', config, '--upload-path', ref]);
        if (run.code === 0) return;
        // A path that relies on one being deleted right now waits for a later batch.
        assert.equal(run.code, 1, run.stderr);
        assert.match(run.stderr + run.stdout, /a prune is deleting|older than half prune_grace_hours/);
        waited++;
        assert.ok(attempt < 10, `${ref} never got through`);
        await sleep(2000);
      }
    };
    try {
      // While the closure is marked: these uploads revive what they rely on.
      for (const ref of referrers.slice(0, 3)) {
        await uploadReferrer(ref);
        await sleep(3000);
      }
      // Once the unused rest (symlinkOut, tree) is swept: its referrer must upload it again.
      for (let i = 0; swept === 0; i++) {
        assert.ok(i < 120, 'the prunes swept nothing within a minute');
        await sleep(500);
      }
      await uploadReferrer(referrers[3]!);
      await sleep(SWEEP_GRACE_HOURS * 3_600_000 * 1.5);
    } finally {
      stop = true;
      await loop;
    }
    t.diagnostic(`${prunes} prunes swept ${swept} narinfos while the upload ran; ${waited} uploads waited`);
    assert.ok(swept > 0, 'the prunes deleted the unused part of the expired closure');
    await assertNothingDangling();
    const closure = await closureOf(referrers);
    const objects = await bucketObjects(s3);
    for (const p of closure) assert.ok(objects.has(`${hashPartOfPath(p)}.narinfo`), `${p} kept`);
    assert.ok(!objects.has(`${hashPartOfPath(victim.tree)}.narinfo`), 'the unused victim.tree was swept');
    await deleteLocally(closure, [...referrers, ...Object.values(victim)]);
    await substitute(referrers, httpCacheUrl(s3), key.publicKey);
    await verifyClosure(referrers, key.publicKey);
    // The next test prunes with grace 0, which only a bucket without a grace record allows; the
    // NARs the revived paths left behind go with such a prune.
    await store.deleteMany([...objects.keys()].filter((k) => k.startsWith('.loft/')));
    await prune({ ...SETTINGS, orphanGraceHours: 0 });
    await assertNothingDangling();
  });

  test('the CLI: --prune --dry-run lists and deletes nothing, --prune deletes, disabled pruning is refused', async (t) => {
    if (!requireNix(t)) return;
    const cliConfig = await writeConfig({
      dir,
      s3,
      signingKeyPath: key.secretPath,
      extraLoft: 'prune_enabled = true\nprune_orphan_grace_hours = 0\nprune_grace_hours = 0',
    });
    await store.deleteMany(['nar/orphan-young.nar.zst']); // left by the first test
    await store.putBytes('nar/cli-orphan.nar.zst', 'o', { contentType: 'application/x-nix-nar' });
    const dry = await runLoft(['-c', cliConfig, '--prune', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would delete nar\/cli-orphan\.nar\.zst/);
    assert.match(dry.stdout, /prune plan for .*would delete 0 paths .* 1 orphan NARs/);
    assert.ok((await bucketObjects(s3)).has('nar/cli-orphan.nar.zst'));
    const real = await runLoft(['-c', cliConfig, '--prune']);
    assert.equal(real.code, 0, real.stderr);
    assert.match(real.stdout, /pruned .*deleted 0 paths .* 1 orphan NARs/);
    assert.ok(!(await bucketObjects(s3)).has('nar/cli-orphan.nar.zst'));
    await assertNothingDangling();

    const disabled = await writeConfig({ dir, s3, extraLoft: 'prune_enabled = false' });
    const refused = await runLoft(['-c', disabled, '--prune']);
    assert.equal(refused.code, 3);
    assert.match(refused.stderr, /pruning is disabled \(loft\.prune_enabled = false\)/);
  });
});
