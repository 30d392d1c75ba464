// The store-watching daemon end to end: the built CLI as a child process, the machine's Nix, s3rver.
// Nix runs against a PRIVATE store (NIX_STORE_DIR/NIX_STATE_DIR in a temp dir, set below before any
// Nix call), so the daemon watches only what this file builds, other test files building into
// /nix/store at the same time cannot disturb it, and the initial scan covers a store of known size.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildFixtureClosure, randomSalt } from '../helpers/fixtures.js';
import { checkBucket } from '../helpers/bucket-invariants.js';
import { startIntegrationEnv, usePrivateNixStore, type IntegrationEnv } from '../helpers/integration-env.js';
import { logLines, runLoft, spawnLoft } from '../helpers/loft-cli.js';
import { hasNix, nixBin, nixEnv, requireNix } from '../helpers/nix-env.js';
import type { TestS3 } from '../helpers/s3-server.js';
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
import { parseNarInfo, type NarInfo } from '../../src/format/narinfo.js';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import { storeOptionsFor } from '../helpers/s3-server.js';

const nixStore = usePrivateNixStore('loft-daemon-nix-');
const STORE_DIR = nixStore.storeDir;

/** The daemon as systemd runs it: a child process logging JSON lines on stderr. */
class Daemon {
  stderr = '';
  readonly exited: Promise<number | null>;
  private constructor(readonly child: ChildProcess) {
    child.stderr!.on('data', (c: Buffer) => (this.stderr += c.toString()));
    child.stdout!.resume();
    this.exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  }
  static async start(config: string): Promise<Daemon> {
    const child = spawnLoft(['-c', config], { env: nixEnv() });
    const d = new Daemon(child);
    await d.waitForLog('daemon started, watching the store');
    return d;
  }
  logs(msg: string): Array<Record<string, unknown>> {
    return logLines(this.stderr).filter((l) => l.msg === msg);
  }
  async waitForLog(msg: string, timeoutMs = 20_000): Promise<Record<string, unknown>> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const found = this.logs(msg)[0];
      if (found) return found;
      if (this.child.exitCode !== null) break;
      await sleep(50);
    }
    throw new Error(`no "${msg}" log line; stderr:\n${this.stderr}`);
  }
  async stop(): Promise<number | null> {
    this.child.kill('SIGTERM');
    return this.exited;
  }
}

async function bucketNarInfo(s3: TestS3, hashPart: string): Promise<NarInfo | undefined> {
  const store = new S3ObjectStore(storeOptionsFor(s3));
  const body = await store.get(`${hashPart}.narinfo`);
  await store.close();
  return body ? parseNarInfo(body.toString('utf8'), STORE_DIR) : undefined;
}

async function until(
  what: string,
  cond: () => Promise<boolean>,
  timeoutMs = 30_000,
  stepMs = 250,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(stepMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

async function missingNarinfos(s3: TestS3, paths: string[]): Promise<string[]> {
  const objects = await bucketObjects(s3);
  return paths.filter((p) => !objects.has(`${hashPartOfPath(p)}.narinfo`));
}

async function waitUploaded(s3: TestS3, paths: string[], timeoutMs = 30_000): Promise<void> {
  let left = paths;
  await until(
    `${paths.length} narinfos`,
    async () => (left = await missingNarinfos(s3, left)).length === 0,
    timeoutMs,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; missing: ${left.slice(0, 5).join(' ')}`);
  });
}

/** The bucket passes checkBucket (NARs present with the sizes and hashes named, references whole). */
async function assertNoNarinfoWithoutNar(s3: TestS3): Promise<number> {
  const check = await checkBucket(s3, { storeDir: STORE_DIR });
  assert.deepEqual(check.violations, []);
  return check.narinfos;
}

/** An expression of `n` tiny derivations; with `failAt`, that one fails to build. */
async function writeBurst(dir: string): Promise<string> {
  const file = join(dir, 'burst.nix');
  await writeFile(
    file,
    `{ salt, n, failAt }:
builtins.genList (i: derivation {
  name = "loft-burst-\${toString i}";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  PATH = "/usr/bin:/bin";
  inherit salt;
  args = [ "-c" (if i == failAt then "exit 1" else "echo \${toString i} > $out") ];
}) n
`,
  );
  return file;
}

/** A path of its own (nothing else references it), built without the daemon noticing it. */
async function buildLoose(salt: string, mb = 0): Promise<string> {
  const script = mb > 0 ? `mkdir $out; head -c ${mb * 1048576} /dev/urandom > $out/r` : 'echo loose > $out';
  const expr = `derivation { name = "loft-loose"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; salt = "${salt}"; args = [ "-c" "${script}" ]; }`;
  const { stdout } = await nixBin(['nix-build', '--no-out-link', '-E', expr]);
  return stdout.trim();
}

after(() => nixStore.remove());

void describe('loft daemon: watches the store and uploads new paths', { concurrency: false }, () => {
  let testEnv: IntegrationEnv | undefined;
  let dir: string;
  let s3: TestS3;
  let key: KeyFiles;
  let config: string;
  let daemon: Daemon | undefined;
  let loose: string;

  before(async () => {
    if (!hasNix()) return;
    testEnv = await startIntegrationEnv('loft-daemon-', 'loft-test-1');
    ({ dir, s3, key } = testEnv);
    config = await testEnv.config({ extraLoft: 'scan_on_startup = false' });
    loose = await buildLoose(randomSalt()); // before the first start: only --enqueue can bring it
    daemon = await Daemon.start(config);
  });
  after(async () => {
    if (daemon && daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
    await testEnv?.close();
  });

  test('a new build appears in the bucket with its whole closure, signed, and Nix substitutes it', async (t) => {
    if (!requireNix(t)) return;
    const f = await buildFixtureClosure({ largeFileMb: 1 });
    const roots = [f.top, f.tree, f.symlinkOut, f.large, f.caUser];
    const closure = await closureOf(roots);
    await waitUploaded(s3, closure);
    for (const p of closure) {
      const ni = await bucketNarInfo(s3, hashPartOfPath(p));
      assert.ok(
        ni?.signatures.some((s) => s.startsWith('loft-test-1:')),
        `signature of ${p}`,
      );
    }
    await deleteLocally(closure, Object.values(f));
    await substitute(roots, httpCacheUrl(s3), key.publicKey);
    await verifyClosure(roots, key.publicKey);
  });

  test('a burst of 200 builds with a failing one in the middle: every built path is uploaded, once', async (t) => {
    if (!requireNix(t)) return;
    const file = await writeBurst(dir);
    const salt = randomSalt();
    const args = ['--argstr', 'salt', salt, '--arg', 'n', '201', '--arg', 'failAt', '100'];
    await assert.rejects(nixBin(['nix-build', '--no-out-link', '--keep-going', file, ...args]));
    const expr = `map (d: d.outPath) (import ${file} { salt = "${salt}"; n = 201; failAt = 100; })`;
    const all = JSON.parse(
      (await nixBin(['nix-instantiate', '--eval', '--strict', '--json', '-E', expr])).stdout,
    ) as string[];
    const built = all.filter((_, i) => i !== 100);
    assert.equal(built.length, 200);
    await waitUploaded(s3, built);
    assert.deepEqual(await missingNarinfos(s3, [all[100]!]), [all[100]], 'the failed build left nothing');
    if (!s3.external) {
      const narinfoPuts = new Map<string, number>();
      for (const r of s3.requests)
        if (r.method === 'PUT' && r.key.endsWith('.narinfo'))
          narinfoPuts.set(r.key, (narinfoPuts.get(r.key) ?? 0) + 1);
      for (const p of built) {
        const key = `${basename(p).slice(0, 32)}.narinfo`;
        assert.equal(narinfoPuts.get(key), 1, `${p} uploaded exactly once`);
      }
    }
  });

  test('--enqueue exits 0 at once and the daemon uploads the path; trouble is only a warning', async (t) => {
    if (!requireNix(t)) return;
    assert.deepEqual(
      await missingNarinfos(s3, [loose]),
      [loose],
      'built before the daemon ran: not found by itself',
    );
    const run = await runLoft(['-c', config, '--enqueue', loose]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /queued 1 path for upload/);
    await waitUploaded(s3, [loose], 15_000);
    const bad = await runLoft(['-c', join(dir, 'missing.toml'), '--enqueue', loose]);
    assert.equal(bad.code, 0);
    assert.match(bad.stderr, /warning: could not queue/);
    const notStore = await runLoft(['-c', config, '--enqueue', '/etc/hostname', '-'], { stdin: '' });
    assert.equal(notStore.code, 0);
    assert.match(notStore.stderr, /warning: not queued/);
  });

  test('SIGTERM stops it with exit 0; --status reports the queue and the last upload', async (t) => {
    if (!requireNix(t)) return;
    assert.equal(await daemon!.stop(), 0, daemon!.stderr);
    assert.ok(daemon!.logs('daemon stopped').length === 1);
    const status = await runLoft(['-c', config, '--status']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^queued: 0 paths/m);
    assert.match(status.stdout, /^parked: 0 paths/m);
    assert.match(status.stdout, /^last upload: \d{4}-\d\d-\d\dT/m);
    assert.match(status.stdout, /^presence cache: [1-9]\d* paths/m);
  });

  test('kill -9 in the middle of an upload, then a restart: everything uploaded, no narinfo without its NAR', async (t) => {
    if (!requireNix(t)) return;
    daemon = await Daemon.start(config);
    const mark = s3.requests.length;
    const building = buildLoose(randomSalt(), 40);
    await until(
      'a multipart upload to start',
      () => {
        const started = s3.requests
          .slice(mark)
          .find((r) => r.key.startsWith('nar/') && r.query.has('uploads'));
        if (started) daemon!.child.kill('SIGKILL');
        return Promise.resolve(started !== undefined);
      },
      30_000,
      10,
    );
    const big = await building;
    assert.equal(await daemon.exited, null, 'killed by a signal');
    assert.deepEqual(await missingNarinfos(s3, [big]), [big], 'killed before the narinfo was written');
    const committed = [...(await bucketObjects(s3)).keys()].filter((k) => k.endsWith('.narinfo'));
    const restartMark = s3.requests.length;
    daemon = await Daemon.start(config);
    await waitUploaded(s3, [big]);
    assert.ok((await assertNoNarinfoWithoutNar(s3)) > 100);
    if (!s3.external) {
      const rewritten = s3.requests
        .slice(restartMark)
        .filter((r) => r.method === 'PUT' && committed.includes(r.key));
      assert.deepEqual(rewritten, [], 'nothing already committed is uploaded again after the restart');
    }
  });

  test('SIGTERM during an upload lets it finish (exit 0); a second signal exits at once (130)', async (t) => {
    if (!requireNix(t)) return;
    const whenUploading = async (signals: NodeJS.Signals[]) => {
      const mark = s3.requests.length;
      const building = buildLoose(randomSalt(), 40);
      await until(
        'a multipart upload to start',
        async () => {
          const started = s3.requests
            .slice(mark)
            .some((r) => r.key.startsWith('nar/') && r.query.has('uploads'));
          if (started) {
            for (const signal of signals) {
              daemon!.child.kill(signal);
              await sleep(50);
            }
          }
          return started;
        },
        30_000,
        10,
      );
      return building;
    };
    const finished = await whenUploading(['SIGTERM']);
    assert.equal(await daemon!.exited, 0, daemon!.stderr);
    assert.deepEqual(await missingNarinfos(s3, [finished]), [], 'the upload in flight was finished');
    daemon = await Daemon.start(config);
    const cut = await whenUploading(['SIGTERM', 'SIGINT']);
    assert.equal(await daemon.exited, 130, daemon.stderr);
    assert.ok(daemon.logs('second signal: exiting now').length === 1);
    daemon = await Daemon.start(config);
    await waitUploaded(s3, [cut]);
    assert.equal(await daemon.stop(), 0, daemon.stderr);
    await assertNoNarinfoWithoutNar(s3);
  });
});

void describe('loft daemon: the initial scan', { concurrency: false }, () => {
  let dir: string;
  let config: string;
  let cacheDir: string;

  before(async () => {
    if (!hasNix()) return;
    dir = await mkdtemp(join(tmpdir(), 'loft-daemon-scan-'));
    cacheDir = join(dir, 'cache');
    await mkdir(cacheDir);
    config = await writeConfig({ dir, localPath: cacheDir, extraLoft: 'scan_on_startup = true' });
    await buildLoose(randomSalt());
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('the first start queues and uploads every valid path; later starts do not scan until --reset-initial-scan', async (t) => {
    if (!requireNix(t)) return;
    const valid = (await nixBin(['nix', 'path-info', '--all'])).stdout
      .split('\n')
      .filter((l) => l.startsWith(STORE_DIR));
    const outputs = valid.filter((p) => !p.endsWith('.drv'));
    const first = await Daemon.start(config);
    const scanned = await first.waitForLog('initial scan queued the store');
    assert.equal(scanned.paths, valid.length);
    await until('the whole store in the local cache', async () => {
      const names = new Set(await readdir(cacheDir));
      return outputs.every((p) => names.has(`${hashPartOfPath(p)}.narinfo`));
    });
    assert.equal(await first.stop(), 0, first.stderr);

    const second = await Daemon.start(config);
    await sleep(500);
    assert.equal(second.logs('initial scan: queueing every valid store path').length, 0, 'no second scan');
    assert.equal(await second.stop(), 0, second.stderr);
    assert.match((await runLoft(['-c', config, '--status'])).stdout, /^initial scan: done/m);

    const reset = await runLoft(['-c', config, '--reset-initial-scan']);
    assert.equal(reset.code, 0, reset.stderr);
    const third = await Daemon.start(config);
    await third.waitForLog('initial scan queued the store');
    assert.equal(await third.stop(), 0, third.stderr);
  });
});
