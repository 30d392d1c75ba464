// Two real loft processes on one bucket, each with its own state database, the way two hosts
// share a cache: host A prunes in a loop with a short grace period (mark, wait, sweep), host B
// uploads new closures that reference an old, expired closure A uploaded. Afterwards the bucket
// checker finds nothing broken, A did delete what nobody used, and real Nix substitutes every
// closure B uploaded with our key required. Also the prune lease: held through a proxy that
// honours If-None-Match like AWS S3, refused while another host holds it, and absent (the
// protocol alone) on s3rver, which ignores the header. And issue 22: hosts whose configured graces
// differ follow the grace the bucket recorded, so a host idle while a short-grace host swept a
// closure it remembers does not publish a narinfo referencing it.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { checkBucket } from '../helpers/bucket-invariants.js';
import { buildFixtureClosure, deleteStorePaths, randomSalt } from '../helpers/fixtures.js';
import { runLoft } from '../helpers/loft-cli.js';
import { hasNix, nixBin, requireNix } from '../helpers/nix-env.js';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import { s3ErrorXml, startS3Server, storeOptionsFor, type TestS3 } from '../helpers/s3-server.js';
import { makeNixKey, type KeyFiles } from '../helpers/signing-keys.js';
import {
  closureOf,
  deleteLocally,
  hashPartOfPath,
  httpCacheUrl,
  substitute,
  writeConfig,
} from '../helpers/upload-env.js';
import { skipTest } from '../helpers/skip.js';

const REFERRER_NIX = fileURLToPath(new URL('../fixtures/referrer.nix', import.meta.url));
const DAY = 86_400_000;
/** 0.004 h = 14.4 s of grace, 3.6 s of settle. */
const GRACE_HOURS = 0.004;

describe('a prune loop on one host while another uploads closures sharing old dependencies', () => {
  let dir: string;
  let s3: TestS3;
  let key: KeyFiles;
  const built: string[] = [];

  before(async () => {
    if (!hasNix()) return;
    dir = await mkdtemp(join(tmpdir(), 'loft-two-hosts-'));
    s3 = await startS3Server();
    key = await makeNixKey(dir, 'loft-two-hosts-1');
  });
  after(async () => {
    if (!hasNix()) return;
    await s3?.close();
    await deleteStorePaths(built);
    await rm(dir, { recursive: true, force: true });
  });

  async function hostConfig(name: string, extraLoft: string): Promise<string> {
    const home = join(dir, name);
    await mkdir(home);
    return writeConfig({ dir: home, s3, signingKeyPath: key.secretPath, extraLoft });
  }

  /** Moves every object in s3rver's data directory `days` back (s3rver reads file mtimes). */
  async function ageBucket(days: number): Promise<void> {
    const when = new Date(Date.now() - days * DAY);
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else await utimes(p, when, when);
      }
    };
    await walk(join(s3.dir!, s3.bucket));
  }

  async function referrerOf(base: string): Promise<string> {
    const { stdout } = await nixBin([
      'nix-build',
      '--no-out-link',
      REFERRER_NIX,
      '--argstr',
      'base',
      base,
      '--argstr',
      'salt',
      randomSalt(),
    ]);
    const out = stdout.trim();
    built.push(out);
    return out;
  }

  test('nothing breaks, unused old paths are swept, Nix substitutes every new closure', async (t) => {
    if (!requireNix(t)) return;
    if (s3.external)
      return skipTest(t, 'in-process-s3', 'reads the in-process s3rver (LOFT_TEST_S3_ENDPOINT is set)');
    const pruner = await hostConfig(
      'a',
      `prune_enabled = true\nprune_retention_days = 1\nprune_orphan_grace_hours = 0\nprune_grace_hours = ${GRACE_HOURS}`,
    );
    // B keeps the default grace: the shorter one A announces in the bucket is the one it follows.
    const uploader = await hostConfig('b', '');
    const old = await buildFixtureClosure({ largeFileMb: 0 });
    built.push(...Object.values(old));
    const up = await runLoft(['-c', pruner, '--upload-path', ...Object.values(old)]);
    assert.equal(up.code, 0, up.stderr);
    await ageBucket(40);

    let stop = false;
    const pruneOutputs: string[] = [];
    const loop = (async () => {
      while (!stop) {
        const run = await runLoft(['-c', pruner, '--prune']);
        assert.equal(run.code, 0, run.stderr);
        pruneOutputs.push(run.stdout);
      }
    })();

    const referrers: string[] = [];
    const bases = [old.top, old.mid, old.leaf, old.top, old.symlinkOut, old.top];
    const conflicts: string[] = [];
    try {
      for (const base of bases) {
        const ref = await referrerOf(base);
        referrers.push(ref);
        for (let attempt = 0; ; attempt++) {
          const run = await runLoft(['-c', uploader, '--upload-path', ref]);
          if (run.code === 0) break;
          // A path a prune is deleting right now waits for a later batch (exit 1, E_PRUNE_CONFLICT).
          assert.equal(run.code, 1, run.stderr);
          assert.match(run.stderr + run.stdout, /a prune is deleting|older than half prune_grace_hours/);
          conflicts.push(ref);
          assert.ok(attempt < 10, `${ref} never got through`);
          await sleep(3000);
        }
        await sleep(5000);
      }
      await sleep(GRACE_HOURS * 3_600_000 * 1.5);
    } finally {
      stop = true;
      await loop;
    }

    const check = await checkBucket(s3, { publicKey: key.publicKey });
    assert.deepEqual(check.violations, []);
    const swept = pruneOutputs.reduce((n, o) => n + Number(/deleted (\d+) narinfos/.exec(o)?.[1] ?? 0), 0);
    t.diagnostic(`${pruneOutputs.length} prunes swept ${swept} narinfos; ${conflicts.length} uploads waited`);
    assert.ok(swept > 0, `the prunes deleted nothing:\n${pruneOutputs.join('\n')}`);
    assert.ok(!check.storePaths.includes(old.tree), 'old.tree, which nothing uses, was swept');

    const closure = await closureOf(referrers);
    await deleteLocally(closure, referrers);
    await substitute(referrers, httpCacheUrl(s3), key.publicKey);
  });
});

describe('hosts with different graces on one bucket follow the grace the bucket recorded', () => {
  let dir: string;
  let s3: TestS3;
  let key: KeyFiles;
  const built: string[] = [];

  before(async () => {
    if (!hasNix()) return;
    dir = await mkdtemp(join(tmpdir(), 'loft-bucket-grace-'));
    s3 = await startS3Server();
    key = await makeNixKey(dir, 'loft-bucket-grace-1');
  });
  after(async () => {
    if (!hasNix()) return;
    await s3?.close();
    await deleteStorePaths(built);
    await rm(dir, { recursive: true, force: true });
  });

  /** Moves every object under `prefix` (a folder of keys) `ms` further into the past. */
  async function ageUnder(prefix: string, ms: number): Promise<void> {
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
        const p = join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else {
          const when = new Date((await stat(p)).mtimeMs - ms);
          await utimes(p, when, when);
        }
      }
    };
    await walk(join(s3.dir!, s3.bucket, ...prefix.split('/').filter(Boolean)));
  }

  test('a long-grace host idle while a short-grace host swept its closure uploads it again', async (t) => {
    if (!requireNix(t)) return;
    if (s3.external)
      return skipTest(
        t,
        'in-process-s3',
        'ages objects in the in-process s3rver (LOFT_TEST_S3_ENDPOINT is set)',
      );
    const graceMs = GRACE_HOURS * 3_600_000;
    const config = async (name: string, extraLoft: string) => {
      await mkdir(join(dir, name));
      return writeConfig({ dir: join(dir, name), s3, signingKeyPath: key.secretPath, extraLoft });
    };
    const prunerA = await config(
      'a',
      `prune_enabled = true\nprune_retention_days = 1\nprune_orphan_grace_hours = 0\nprune_grace_hours = ${GRACE_HOURS}`,
    );
    const hostB = await config('b', ''); // the default grace, 24 h
    const m = await buildFixtureClosure({ largeFileMb: 0 });
    built.push(...Object.values(m));
    const up = await runLoft(['-c', hostB, '--upload-path', m.top]);
    assert.equal(up.code, 0, up.stderr);
    await ageUnder('', 40 * DAY);

    // A marks M, dooms it a grace later and sweeps it in the same run, then deletes its NARs:
    // each grace "passes" by moving A's state objects back.
    const outputs: string[] = [];
    for (let step = 0; step < 3; step++) {
      if (step > 0) await ageUnder('.loft/prune', graceMs + 1000);
      const run = await runLoft(['-c', prunerA, '--prune']);
      assert.equal(run.code, 0, run.stderr);
      outputs.push(run.stdout);
    }
    const keys = await bucketKeys(new S3ObjectStore(storeOptionsFor(s3)));
    assert.ok(!keys.has(`${hashPartOfPath(m.top)}.narinfo`), `A swept M:\n${outputs.join('\n')}`);
    assert.deepEqual(
      [...keys].filter((k) => k.startsWith('.loft/prune/')),
      [],
      'no state object is left to tell B',
    );
    assert.ok(keys.has('.loft/grace.json'), 'the first prune recorded its grace');

    // B was idle longer than half the bucket's grace (its own is 24 h) and remembers M as present.
    await sleep(graceMs / 2 + 500);
    const ref = await referrerOf(m.top);
    const again = await runLoft(['-c', hostB, '--upload-path', ref]);
    assert.equal(again.code, 0, again.stderr);
    const check = await checkBucket(s3, { publicKey: key.publicKey });
    t.diagnostic(`bucket check: ${check.violations.length} violations ${check.violations.join('; ')}`);
    const closure = await closureOf([ref]);
    await deleteLocally(closure, [ref, ...Object.values(m)]);
    const nix = await substitute([ref], httpCacheUrl(s3), key.publicKey).then(
      () => 'substituted',
      (err: unknown) => `failed: ${String(err).split('\n').slice(-3).join(' ')}`,
    );
    t.diagnostic(`nix: ${nix}`);
    assert.deepEqual(check.violations, []);
    assert.equal(nix, 'substituted');

    // A third host with the default grace prunes: it follows the bucket's and says so in one line.
    const hostC = await config('c', 'prune_enabled = true');
    const dry = await runLoft(['-c', hostC, '--prune', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /grace 14\.4 s/);
    assert.equal(dry.stderr.match(/following the bucket's/g)?.length, 1, dry.stderr);

    // Changing the bucket's grace waits for the one in force.
    const preview = await runLoft(['-c', hostC, '--set-bucket-grace', '2', '--dry-run']);
    assert.equal(preview.code, 0, preview.stderr);
    assert.match(preview.stdout, /would be now 0\.004 h, changing to 2 h at /);
    const set = await runLoft(['-c', hostC, '--set-bucket-grace', '2']);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /is now 0\.004 h, changing to 2 h at /);
  });

  async function referrerOf(base: string): Promise<string> {
    const args = ['nix-build', '--no-out-link', REFERRER_NIX, '--argstr', 'base', base];
    const { stdout } = await nixBin([...args, '--argstr', 'salt', randomSalt()]);
    const out = stdout.trim();
    built.push(out);
    return out;
  }
});

/** A proxy to s3rver that honours `If-None-Match: *` on PUT (412 when the key exists), as AWS does. */
async function startConditionalProxy(backend: string): Promise<{ endpoint: string; close(): Promise<void> }> {
  const up = new URL(backend);
  const forward = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const out = http.request(
      { host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  };
  const server = http.createServer((req, res) => {
    if (req.method !== 'PUT' || req.headers['if-none-match'] !== '*') return forward(req, res);
    req.pause();
    const head = http.request(
      { host: up.hostname, port: up.port, method: 'HEAD', path: req.url },
      (answer) => {
        answer.resume();
        if (answer.statusCode !== 200) return forward(req, res);
        req.resume();
        const body = s3ErrorXml(
          'PreconditionFailed',
          'At least one of the pre-conditions you specified did not hold',
        );
        req.on('end', () => res.writeHead(412, { 'content-type': 'application/xml' }).end(body));
      },
    );
    head.on('error', () => res.destroy());
    head.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('the prune lease', () => {
  let dir: string;
  let s3: TestS3;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loft-lease-'));
    s3 = await startS3Server();
  });
  after(async () => {
    await s3?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('held where If-None-Match works, refused while another host holds it, absent on s3rver', async (t) => {
    if (s3.external)
      return skipTest(
        t,
        'in-process-s3',
        'If-None-Match is probed on the in-process s3rver (LOFT_TEST_S3_ENDPOINT is set)',
      );
    const proxy = await startConditionalProxy(s3.backend);
    try {
      const extraLoft = 'prune_enabled = true\nprune_grace_hours = 1';
      const conditional = await writeConfig({ dir, s3: { ...s3, endpoint: proxy.endpoint }, extraLoft });
      for (let i = 0; i < 2; i++) {
        const run = await runLoft(['-c', conditional, '--prune']);
        assert.equal(run.code, 0, run.stderr);
        assert.match(run.stdout, /held the prune lease \(\.loft\/lease\)/);
      }
      const store = new S3ObjectStore({ ...storeOptionsFor(s3), endpoint: s3.backend });
      const keys = async () => [...(await bucketKeys(store))];
      assert.deepEqual(
        (await keys()).filter((k) => k.startsWith('.loft/lease')),
        [],
        'lease released, probes removed',
      );
      await store.putBytes('.loft/lease', '{"v":1,"host":"other-host"}\n', {
        contentType: 'application/json',
      });
      const busy = await runLoft(['-c', conditional, '--prune']);
      assert.equal(busy.code, 0, busy.stderr);
      assert.match(busy.stdout, /skipped: other-host holds the prune lease/);
      await store.deleteMany(['.loft/lease']);
      await store.close();

      const plain = await writeConfig({ dir, s3, extraLoft });
      const run = await runLoft(['-c', plain, '--prune']);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /no lease \(the server ignores If-None-Match\): the mark\/sweep rule alone/);
    } finally {
      await proxy.close();
    }
  });
});

async function bucketKeys(store: { list(p: string): AsyncIterable<{ key: string }> }): Promise<Set<string>> {
  const out = new Set<string>();
  for await (const o of store.list('')) out.add(o.key);
  return out;
}
