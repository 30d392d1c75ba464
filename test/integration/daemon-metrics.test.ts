// The daemon's Prometheus metrics (loft.metrics_listen), scraped from the real daemon: the built
// CLI as a child process with a config, s3rver, and the machine's Nix adding paths to a PRIVATE
// store (as in daemon.test.ts, so other test files' builds cannot move the counters). The numbers
// must change after an upload and after a scheduled prune (the daemon also publishes this host's
// roots); a bad address or a taken port is a config error (exit 3).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseRoots, rootsKey } from '../../src/format/loft-state.js';
import { logLines, runLoft, spawnLoft } from '../helpers/loft-cli.js';
import { hasNix, nixBin, nixEnv, requireNix } from '../helpers/nix-env.js';
import { startS3Server, type TestS3 } from '../helpers/s3-server.js';
import { makeNixKey } from '../helpers/signing-keys.js';
import { bucketObjects, hashPartOfPath, httpCacheUrl, writeConfig } from '../helpers/upload-env.js';

const storeRoot = mkdtempSync(join(tmpdir(), 'loft-metrics-nix-'));
chmodSync(storeRoot, 0o755);
process.env.NIX_STORE_DIR = join(storeRoot, 'store');
process.env.NIX_STATE_DIR = join(storeRoot, 'state');
process.env.NIX_LOG_DIR = join(storeRoot, 'log');
process.env.NIX_CONFIG = `build-users-group =\n${process.env.NIX_CONFIG ?? ''}`;

async function scrape(port: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const values = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const [name, value] = line.split(' ');
    values.set(name!, Number(value));
  }
  return values;
}

/** The daemon started with `config`, its stderr collected, once it serves /metrics. */
async function startDaemon(config: string) {
  const child = spawnLoft(['-c', config], { env: nixEnv() });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout!.resume();
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const log = () => stderr;
  const line = (msg: string) => logLines(stderr).find((l) => l.msg === msg);
  await until(() => line('serving Prometheus metrics at /metrics') !== undefined, log);
  const port = (line('serving Prometheus metrics at /metrics')!.address as { port: number }).port;
  assert.ok(port > 0);
  return { child, exited, log, line, port };
}

describe('daemon metrics (loft.metrics_listen)', () => {
  let dir: string;
  let s3: TestS3;
  let daemon: ChildProcess | undefined;

  before(async () => {
    if (!hasNix()) return;
    dir = await mkdtemp(join(tmpdir(), 'loft-metrics-it-'));
    s3 = await startS3Server();
    await nixBin(['nix-store', '--init']).catch(() => undefined);
  });
  after(async () => {
    daemon?.kill('SIGKILL');
    await s3?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    await rm(storeRoot, { recursive: true, force: true }).catch(() => undefined);
  });

  test('a scrape of the running daemon shows the upload it made', async (t) => {
    if (!requireNix(t)) return;
    const key = await makeNixKey(dir, 'loft-metrics-1');
    const extraLoft = 'scan_on_startup = false\nmetrics_listen = "127.0.0.1:0"';
    const config = await writeConfig({ dir, s3, signingKeyPath: key.secretPath, extraLoft });
    const { child, exited, log, line, port } = await startDaemon(config);
    daemon = child;
    await until(() => line('daemon started, watching the store') !== undefined, log);

    const before = await scrape(port);
    assert.equal(before.get('loft_uploaded_paths_total'), 0);
    assert.equal(before.get('loft_queue_paths'), 0);
    assert.equal(before.get('loft_last_prune_timestamp_seconds'), 0);
    assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 404);

    const file = join(dir, 'payload.txt');
    await writeFile(file, `metrics ${Date.now()}\n`.repeat(100));
    const { stdout } = await nixBin(['nix-store', '--add', file]);
    const path = stdout.trim();
    await until(async () => (await bucketObjects(s3)).has(`${hashPartOfPath(path)}.narinfo`), log);
    await until(async () => (await scrape(port)).get('loft_uploaded_paths_total') === 1, log);
    const now = await scrape(port);
    assert.equal(now.get('loft_uploaded_nar_bytes_total')! > 2000, true, 'the NAR holds the 2 kB file');
    assert.ok(now.get('loft_uploaded_file_bytes_total')! > 0);
    assert.equal(now.get('loft_upload_failures_total'), 0);
    assert.equal(now.get('loft_queue_paths'), 0);

    child.kill('SIGTERM');
    assert.equal(await exited, 0, log());
    daemon = undefined;
  });

  test("the scheduled prune is recorded in the metrics; publish_roots writes this host's roots", async (t) => {
    if (!requireNix(t)) return;
    const file = join(dir, 'root.txt');
    await writeFile(file, `root ${Date.now()}\n`);
    const root = (await nixBin(['nix-store', '--add', file])).stdout.trim();
    const extraLoft = [
      'scan_on_startup = false',
      'metrics_listen = "127.0.0.1:0"',
      'prune_enabled = true',
      'prune_schedule = "2s"',
      `publish_roots = ["${root}"]`,
    ].join('\n');
    const config = await writeConfig({ dir, s3, extraLoft });
    const { child, exited, log, line, port } = await startDaemon(config);
    daemon = child;
    await until(async () => (await scrape(port)).get('loft_last_prune_timestamp_seconds')! > 0, log);
    const after = await scrape(port);
    assert.equal(after.get('loft_last_prune_success'), 1, log());
    assert.equal(after.get('loft_last_prune_deleted_paths'), 0, 'nothing in the bucket is old');
    assert.ok(line('scheduled prune finished'), log());
    const rootsFile = rootsKey(hostname());
    await until(async () => (await bucketObjects(s3)).has(rootsFile), log);
    const body = await (await fetch(`${httpCacheUrl(s3)}/${rootsFile}`)).text();
    assert.deepEqual(parseRoots(body).paths, [hashPartOfPath(root)]);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, log());
    daemon = undefined;
  });

  test('an address that is not HOST:PORT, or a port in use, is a config error (exit 3)', async (t) => {
    if (!requireNix(t)) return;
    const bad = await writeConfig({ dir, s3, extraLoft: 'metrics_listen = "metrics.example.org:9464"' });
    const r1 = await runLoft(['-c', bad]);
    assert.equal(r1.code, 3, r1.stderr);
    assert.match(r1.stderr, /^loft: .*loft\.metrics_listen: expected "HOST:PORT"/);
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = taken.address() as { port: number };
      const busy = await writeConfig({ dir, s3, extraLoft: `metrics_listen = "127.0.0.1:${port}"` });
      const r2 = await runLoft(['-c', busy]);
      assert.equal(r2.code, 3, r2.stderr);
      assert.match(
        r2.stderr,
        /^loft: loft\.metrics_listen 127\.0\.0\.1:\d+: cannot listen \(the address is in use\)/m,
      );
      assert.doesNotMatch(r2.stderr, /\n\s+at /, 'no stack trace');
    } finally {
      taken.close();
    }
  });
});

async function until(
  cond: () => boolean | Promise<boolean>,
  log: () => string,
  timeoutMs = 30_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(100);
  }
  throw new Error(`timed out; daemon stderr:\n${log()}`);
}
