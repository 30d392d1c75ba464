// kill -9 at twenty moments: sixteen during the upload of a 40-path closure (presence checks, NAR
// bodies, multipart parts, narinfos, just after the server answered) and four during a prune
// (listing, before and after the narinfo deletes, before the NAR deletes). After every kill the
// bucket is checked as a reader sees it, and each restart must not send again anything that was
// already complete. At the end real Nix substitutes the kept closure with our key required.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { rm, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import { checkBucket } from '../helpers/bucket-invariants.js';
import { startIntegrationEnv, type IntegrationEnv } from '../helpers/integration-env.js';
import { buildFixtureClosure, randomSalt } from '../helpers/fixtures.js';
import { runLoft, spawnLoft } from '../helpers/loft-cli.js';
import { hasNix, nixBin, nixEnv, requireNix } from '../helpers/nix-env.js';
import { recordOf, type RecordedRequest, type TestS3, storeOptionsFor } from '../helpers/s3-server.js';
import type { KeyFiles } from '../helpers/signing-keys.js';
import {
  bucketNarInfo,
  bucketObjects,
  closureOf,
  deleteLocally,
  hashPartOfPath,
  httpCacheUrl,
  substitute,
} from '../helpers/upload-env.js';
import { skipTest } from '../helpers/skip.js';

const WIDE_NIX = fileURLToPath(new URL('../fixtures/wide-closure.nix', import.meta.url));
const DAY = 86_400_000;

/** A moment to kill at: the `nth` request that `match` accepts, before or just after forwarding. */
interface Moment {
  name: string;
  match: (r: RecordedRequest) => boolean;
  nth: number;
  /** 'before': the request never reaches the server; 'after': the server acts, the client dies. */
  when: 'before' | 'after';
}

const isPut = (r: RecordedRequest) => r.method === 'PUT' && !r.query.has('partNumber');
const isNarPut = (r: RecordedRequest) => isPut(r) && r.key.startsWith('nar/');
const isNarinfoPut = (r: RecordedRequest) => isPut(r) && r.key.endsWith('.narinfo');
const isPart = (r: RecordedRequest) => r.method === 'PUT' && r.query.has('partNumber');
const isComplete = (r: RecordedRequest) => r.method === 'POST' && r.query.has('uploadId');
const isHead = (r: RecordedRequest) => r.method === 'HEAD' && r.key.endsWith('.narinfo');
const isList = (r: RecordedRequest) => r.method === 'GET' && r.key === '' && r.query.has('list-type');
const isDelete = (r: RecordedRequest) => r.method === 'POST' && r.query.has('delete');

const UPLOAD_MOMENTS: Moment[] = [
  { name: 'first multipart part sent', match: isPart, nth: 1, when: 'before' },
  { name: 'second multipart part stored', match: isPart, nth: 2, when: 'after' },
  { name: 'multipart completion sent', match: isComplete, nth: 1, when: 'before' },
  { name: 'third presence HEAD', match: isHead, nth: 3, when: 'before' },
  { name: 'first NAR PUT', match: isNarPut, nth: 1, when: 'before' },
  { name: 'first narinfo stored', match: isNarinfoPut, nth: 1, when: 'after' },
  { name: 'second NAR stored', match: isNarPut, nth: 2, when: 'after' },
  { name: 'second narinfo sent', match: isNarinfoPut, nth: 2, when: 'before' },
  { name: 'third PUT stored', match: isPut, nth: 3, when: 'after' },
  { name: 'third narinfo stored', match: isNarinfoPut, nth: 3, when: 'after' },
  { name: 'fourth PUT sent', match: isPut, nth: 4, when: 'before' },
  { name: 'first narinfo sent', match: isNarinfoPut, nth: 1, when: 'before' },
  { name: 'fifth PUT stored', match: isPut, nth: 5, when: 'after' },
  { name: 'second narinfo stored', match: isNarinfoPut, nth: 2, when: 'after' },
  { name: 'sixth PUT sent', match: isPut, nth: 6, when: 'before' },
  { name: 'fourth narinfo stored', match: isNarinfoPut, nth: 4, when: 'after' },
];

const PRUNE_MOMENTS: Moment[] = [
  { name: 'first bucket listing', match: isList, nth: 1, when: 'before' },
  { name: 'narinfo deletes sent', match: isDelete, nth: 1, when: 'before' },
  { name: 'narinfo deletes applied', match: isDelete, nth: 1, when: 'after' },
  { name: 'NAR deletes sent', match: isDelete, nth: 1, when: 'before' },
];

/**
 * A proxy that kills the client at the moment `decide` picks: 'before' the request reaches the
 * server, or 'after' the server answered and before the answer reaches the client (the server
 * acted; the client never learns it). Bodies are read whole first, like the network would.
 */
async function startKillingProxy(
  target: string,
  decide: (r: RecordedRequest) => { when: 'before' | 'after'; kill: () => void } | undefined,
): Promise<{ endpoint: string; close(): Promise<void> }> {
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    const decision = decide(recordOf(req));
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => res.destroy());
    req.on('end', () => {
      if (decision?.when === 'before') {
        decision.kill();
        return res.destroy();
      }
      const out = http.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (answer) => {
          const body: Buffer[] = [];
          answer.on('data', (c: Buffer) => body.push(c));
          answer.on('end', () => {
            if (decision) {
              decision.kill();
              return res.destroy();
            }
            res.writeHead(answer.statusCode ?? 502, answer.headers).end(Buffer.concat(body));
          });
        },
      );
      out.on('error', () => res.destroy());
      out.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('kill -9 at twenty moments of uploads and a prune', () => {
  let testEnv: IntegrationEnv | undefined;
  let dir: string;
  let s3: TestS3;
  let killer: { endpoint: string; close(): Promise<void> };
  let key: KeyFiles;
  let config: string;
  let armed: { moment: Moment; seen: number; victim: ChildProcess; fired: boolean } | undefined;
  const built: string[] = [];

  before(async () => {
    if (!hasNix()) return;
    testEnv = await startIntegrationEnv('loft-crash-', 'loft-crash-1');
    ({ dir, s3, key } = testEnv);
    // In front of the recording proxy: the recorder then sees exactly what reached the server.
    killer = await startKillingProxy(s3.endpoint, (record) => {
      const a = armed;
      if (!a || a.fired || !a.moment.match(record) || ++a.seen < a.moment.nth) return undefined;
      a.fired = true;
      return { when: a.moment.when, kill: () => a.victim.kill('SIGKILL') };
    });
    config = await testEnv.config({
      s3: { ...s3, endpoint: killer.endpoint },
      extraLoft: 'prune_enabled = true\nprune_retention_days = 30\nprune_grace_hours = 0',
    });
  });
  after(async () => {
    if (!hasNix()) return;
    await killer.close();
    await testEnv?.close(built);
  });

  /** Runs the CLI until it exits or the armed moment kills it; returns how it ended. */
  async function runUntil(
    args: string[],
    moment: Moment | undefined,
  ): Promise<{ code: number | null; stderr: string }> {
    const child = spawnLoft(['-c', config, ...args], { env: nixEnv() });
    armed = moment ? { moment, seen: 0, victim: child, fired: false } : undefined;
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    armed = undefined;
    return { code, stderr };
  }

  async function emptyBucketAndDatabase(): Promise<void> {
    const store = new S3ObjectStore({ ...storeOptionsFor(s3), endpoint: s3.backend });
    const keys: string[] = [];
    for await (const o of store.list('')) keys.push(o.key);
    if (keys.length > 0) await store.deleteMany(keys);
    await store.close();
    for (const f of ['cache.db', 'cache.db-wal', 'cache.db-shm']) await rm(join(dir, f), { force: true });
  }

  /** s3rver takes LastModified from its data file's mtime. */
  async function setAge(k: string, when: Date): Promise<void> {
    const parts = k.split('/');
    const file = `${parts.pop()}._S3rver_object`;
    await utimes(join(s3.dir!, s3.bucket, ...parts, file), when, when);
  }

  async function assertConsistent(when: string): Promise<Set<string>> {
    const check = await checkBucket(s3, { publicKey: key.publicKey });
    assert.deepEqual(check.violations, [], `after ${when}`);
    const objects = await bucketObjects(s3);
    return new Set([...objects.keys()].filter((k) => k.endsWith('.narinfo')));
  }

  /** Keys of the narinfos in `committed` and the NARs they name. */
  async function completeKeys(committed: Set<string>): Promise<Set<string>> {
    const out = new Set(committed);
    const objects = await bucketObjects(s3);
    for (const k of committed) {
      const info = await bucketNarInfo(s3, k.replace(/\.narinfo$/, ''));
      if (info && objects.has(info.url)) out.add(info.url);
    }
    return out;
  }

  test('sixteen kills during an upload, a restart after each: consistent, nothing complete sent again', async (t) => {
    if (!requireNix(t)) return;
    if (s3.external)
      return skipTest(
        t,
        'in-process-s3',
        'needs the in-process server: its request record and data directory',
      );
    const salt = randomSalt();
    const args = ['--argstr', 'salt', salt, '--arg', 'width', '18', '--arg', 'largeFileMb', '11'];
    const root = (await nixBin(['nix-build', '--no-out-link', WIDE_NIX, ...args])).stdout.trim();
    const closure = await closureOf([root]);
    built.push(...closure);
    assert.equal(closure.length, 20);

    let kills = 0;
    let committedAtKill = 0;
    for (const moment of UPLOAD_MOMENTS) {
      // Each moment starts from an empty bucket and database, so every moment is reached.
      await emptyBucketAndDatabase();
      const killed = await runUntil(['--upload-path', root], moment);
      assert.equal(
        killed.code,
        null,
        `killed at "${moment.name}" (it exited ${killed.code}):\n${killed.stderr}`,
      );
      kills++;
      const narinfos = await assertConsistent(`the kill at "${moment.name}"`);
      committedAtKill += narinfos.size;
      const complete = await completeKeys(narinfos);
      const mark = s3.requests.length;
      const restart = await runUntil(['--upload-path', root], undefined);
      assert.equal(restart.code, 0, restart.stderr);
      const resent = s3.requests
        .slice(mark)
        .filter((r) => (isPut(r) || isPart(r) || isComplete(r)) && complete.has(r.key))
        .map((r) => `${r.method} ${r.key}`);
      assert.deepEqual(resent, [], `the restart after "${moment.name}" sent again what was complete`);
      const after = await assertConsistent(`the restart after "${moment.name}"`);
      for (const p of closure) assert.ok(after.has(`${hashPartOfPath(p)}.narinfo`), `${p} uploaded`);
    }
    t.diagnostic(
      `upload kills survived: ${kills}; narinfos already committed at the kills: ${committedAtKill}`,
    );

    await deleteLocally(closure);
    await substitute([root], httpCacheUrl(s3), key.publicKey);
  });

  test('four kills during a prune: the kept closure stays whole and Nix substitutes it', async (t) => {
    if (!requireNix(t)) return;
    if (s3.external)
      return skipTest(
        t,
        'in-process-s3',
        'needs the in-process server: its request record and data directory',
      );
    // Everything uploaded so far is aged past retention; a fresh closure is uploaded and kept.
    const fresh = await buildFixtureClosure({ largeFileMb: 0 });
    built.push(...Object.values(fresh));
    const upload = await runLoft(['-c', config, '--upload-path', fresh.top, fresh.caUser]);
    assert.equal(upload.code, 0, upload.stderr);
    const keep = await closureOf([fresh.top, fresh.caUser]);
    const keepKeys = new Set(keep.map((p) => `${hashPartOfPath(p)}.narinfo`));
    const old = new Date(Date.now() - 40 * DAY);
    for (const k of (await bucketObjects(s3)).keys()) if (k !== 'nix-cache-info') await setAge(k, old);
    for (const p of keep) {
      const info = await bucketNarInfo(s3, hashPartOfPath(p));
      assert.ok(info, `narinfo of ${p}`);
      await setAge(`${hashPartOfPath(p)}.narinfo`, new Date());
      await setAge(info.url, new Date());
    }

    let kills = 0;
    for (const moment of PRUNE_MOMENTS) {
      const run = await runUntil(['--prune'], moment);
      if (run.code === null) kills++;
      else assert.equal(run.code, 0, run.stderr);
      const narinfos = await assertConsistent(`the prune killed at "${moment.name}"`);
      for (const k of keepKeys) assert.ok(narinfos.has(k), `kept ${k}`);
    }
    assert.equal(kills, PRUNE_MOMENTS.length, 'every prune moment was reached');
    const last = await runUntil(['--prune'], undefined);
    assert.equal(last.code, 0, last.stderr);
    const narinfos = await assertConsistent('the final prune');
    assert.deepEqual([...narinfos].sort(), [...keepKeys].sort(), 'only the fresh closure is left');

    await deleteLocally(keep, Object.values(fresh));
    await substitute([fresh.top, fresh.caUser], httpCacheUrl(s3), key.publicKey);
    t.diagnostic(`prune kills survived: ${kills}`);
  });
});
