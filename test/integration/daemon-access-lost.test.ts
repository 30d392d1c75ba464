// Access lost while the daemon runs, and regained: the built CLI as a child process, s3rver behind
// the SigV4-checking proxy (test/helpers/sigv4-proxy.ts) whose secret changes mid-run (credentials
// revoked: every request 403 SignatureDoesNotMatch) and then changes back. The daemon must keep its
// queue, say so once, show it in --status and /metrics, and upload everything by itself once the
// secret is right again. --upload-path and --watch-exec exit 4 with one line instead.
// Nix adds paths to a PRIVATE store (integration-env.ts), so the daemon sees only this file's paths.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { logLines, runLoft, spawnLoft } from '../helpers/loft-cli.js';
import { nixBin, nixEnv, requireNix } from '../helpers/nix-env.js';
import { startIntegrationEnv, usePrivateNixStore, type IntegrationEnv } from '../helpers/integration-env.js';
import { startSigV4Proxy, type SigV4Proxy } from '../helpers/sigv4-proxy.js';
import { bucketObjects, hashPartOfPath } from '../helpers/upload-env.js';

const nixStore = usePrivateNixStore('loft-access-nix-');
const external = Boolean(process.env.LOFT_TEST_S3_ENDPOINT);
const skip = external
  ? 'needs the in-process s3rver behind the SigV4 proxy (LOFT_TEST_S3_ENDPOINT is set)'
  : false;

let env: IntegrationEnv;
let proxy: SigV4Proxy;
let daemon: ChildProcess | undefined;

async function until(
  what: string,
  cond: () => Promise<boolean> | boolean,
  timeoutMs = 30_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A new store path of its own, added with nix-store --add (the daemon's watcher sees it). */
async function addPath(name: string): Promise<string> {
  const file = join(env.dir, name);
  await writeFile(file, `${name} ${Date.now()} ${Math.random()}\n`);
  return (await nixBin(['nix-store', '--add', file])).stdout.trim();
}

async function uploaded(path: string): Promise<boolean> {
  return (await bucketObjects(env.s3)).has(`${hashPartOfPath(path)}.narinfo`);
}

async function scrape(port: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const [name, value] = line.split(' ');
    values.set(name!, Number(value));
  }
  return values;
}

async function configVia(endpoint: string, extraLoft = ''): Promise<string> {
  return env.configIn('cfg', { s3: { ...env.s3, endpoint }, extraLoft });
}

describe('object store access lost while running', { skip }, () => {
  before(async () => {
    env = await startIntegrationEnv('loft-access-', 'loft-access-1');
    proxy = await startSigV4Proxy({
      target: env.s3.endpoint,
      accessKeyId: env.s3.accessKeyId,
      secretAccessKey: env.s3.secretAccessKey,
      region: env.s3.region,
    });
  });
  after(async () => {
    daemon?.kill('SIGKILL');
    await proxy?.close();
    await env?.close();
    await nixStore.remove();
  });

  test('the daemon keeps its queue, says so once, shows it, and resumes by itself', async (t) => {
    if (!requireNix(t)) return;
    const config = await configVia(proxy.endpoint, 'scan_on_startup = false\nmetrics_listen = "127.0.0.1:0"');
    await addPath('before-the-start'); // creates the private store the daemon watches
    daemon = spawnLoft(['-c', config], { env: nixEnv() });
    let stderr = '';
    daemon.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    daemon.stdout!.resume();
    const lines = (prefix: string) => logLines(stderr).filter((l) => String(l.msg).startsWith(prefix));
    await until('the daemon to start', () => lines('daemon started, watching the store').length === 1);
    const port = (lines('serving Prometheus metrics')[0]!.address as { port: number }).port;

    const first = await addPath('first');
    await until('the first upload', () => uploaded(first));
    assert.equal((await scrape(port)).get('loft_storage_access_ok'), 1);

    // Credentials revoked: every request is refused from now on.
    proxy.setSecret('a-secret-that-was-revoked');
    const during = [await addPath('during-1'), await addPath('during-2')];
    await until('the access-lost line', () => lines('object store refuses loft').length === 1);
    const refusedBefore = proxy.seen.filter((r) => r.verdict !== 'ok').length;
    const during3 = await addPath('during-3');
    during.push(during3);
    await sleep(3000); // new paths arrive while access is lost: they wait, nothing is tried per path

    const status = await runLoft(['-c', config, '--status']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /storage access: LOST since \S+ \(E_STORAGE_AUTH\)/);
    assert.match(status.stdout, /queued: 3 paths/);
    assert.doesNotMatch(status.stdout, new RegExp(env.s3.secretAccessKey));
    const lost = await scrape(port);
    assert.equal(lost.get('loft_storage_access_ok'), 0);
    assert.ok(lost.get('loft_storage_access_lost_since_timestamp_seconds')! > 0);
    assert.equal(lost.get('loft_queue_paths'), 3);
    assert.ok(
      proxy.seen.filter((r) => r.verdict !== 'ok').length - refusedBefore <= 2,
      'while access is lost the daemon does not try path after path',
    );

    // Access returns: the daemon notices by itself (its first look comes after 11-15 s).
    proxy.setSecret(env.s3.secretAccessKey);
    await until(
      'the paths queued meanwhile',
      async () => (await Promise.all(during.map(uploaded))).every(Boolean),
      45_000,
    );
    await until('the access-regained line', () => lines('object store accepts loft again').length === 1);
    assert.equal(lines('object store refuses loft').length, 1, 'one line when access was lost');
    assert.equal(lines('upload failed').length, 0, 'no line per path');
    assert.equal(lines('upload batch failed').length, 0, 'no line per batch');
    const back = await scrape(port);
    assert.equal(back.get('loft_storage_access_ok'), 1);
    assert.equal(back.get('loft_storage_access_lost_total'), 1);
    assert.equal(back.get('loft_queue_paths'), 0);
    const statusAfter = await runLoft(['-c', config, '--status']);
    assert.match(statusAfter.stdout, /storage access: ok/);
    assert.equal(daemon.exitCode, null, 'the daemon never stopped');
    daemon.kill('SIGTERM');
    assert.equal(await new Promise((resolve) => daemon!.on('close', resolve)), 0);
    daemon = undefined;
  });

  test('--upload-path exits 4 with one line when access is lost in the middle of the run', async (t) => {
    if (!requireNix(t)) return;
    const config = await configVia(proxy.endpoint);
    const path = await addPath('upload-path');
    // The access check and the presence look pass; the first upload is refused.
    proxy.onRequest = (req) => {
      if (req.method === 'PUT') proxy.setSecret('revoked-during-the-run');
    };
    try {
      const run = await runLoft(['-c', config, '--upload-path', path]);
      assert.equal(run.code, 4, run.stderr);
      const said = run.stderr.split('\n').filter((l) => /refused|SignatureDoesNotMatch/.test(l));
      assert.equal(said.length, 1, run.stderr);
      assert.doesNotMatch(run.stderr, new RegExp(env.s3.secretAccessKey));
    } finally {
      delete proxy.onRequest;
      proxy.setSecret(env.s3.secretAccessKey);
    }
  });

  test('--watch-exec exits 4 with one line when the store refuses its uploads', async (t) => {
    if (!requireNix(t)) return;
    const config = await configVia(proxy.endpoint);
    const file = join(env.dir, 'watched');
    await writeFile(file, `watched ${Date.now()}\n`);
    proxy.setSecret('revoked-before-the-command');
    try {
      const run = await runLoft(['-c', config, '--watch-exec', '--', 'nix-store', '--add', file], {
        env: nixEnv(),
      });
      assert.equal(run.code, 4, run.stderr);
      const said = run.stderr.split('\n').filter((l) => l.startsWith('loft: uploads stopped'));
      assert.equal(said.length, 1, run.stderr);
    } finally {
      proxy.setSecret(env.s3.secretAccessKey);
    }
  });
});
