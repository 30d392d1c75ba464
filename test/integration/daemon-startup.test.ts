// The daemon's start against an object store it cannot use, as systemd runs it (the built CLI, JSON
// lines on stderr). A definite refusal (no such bucket, wrong secret behind a SigV4-verifying proxy,
// a web server that is not S3, https spoken to a plain-http port) must end the process with exit 4
// and one `loft:` line within seconds, so the unit shows as failed. A closed port is transient: the
// daemon keeps running, logs one line per attempt, and uploads once the endpoint comes up.
// Nix runs against a private store (set before any Nix call), so the initial scan sees one path.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { startIntegrationEnv, usePrivateNixStore, type IntegrationEnv } from '../helpers/integration-env.js';
import { LOFT_MAIN, logLines, spawnLoft } from '../helpers/loft-cli.js';
import { recordChildOutput } from '../helpers/test-secrets.js';
import { hasNix, nixBin, nixEnv, requireNix } from '../helpers/nix-env.js';
import type { TestS3 } from '../helpers/s3-server.js';
import { startSigV4Proxy } from '../helpers/sigv4-proxy.js';
import { bucketObjects, hashPartOfPath } from '../helpers/upload-env.js';

const nixStore = usePrivateNixStore('loft-daemon-start-nix-');

const execFileAsync = promisify(execFile);

/** Stack frames, raw or inside a JSON log line. */
const STACK = /(^|\n|\\n)\s+at \S.*(:\d+:\d+\)?|\(native\))/;

const closers: Array<() => Promise<unknown>> = [];
let testEnv: IntegrationEnv | undefined;
let s3: TestS3;
let dir: string;
let path: string;

before(async () => {
  if (!hasNix()) return;
  testEnv = await startIntegrationEnv('loft-daemon-start-', 'loft-daemon-start-1');
  ({ dir, s3 } = testEnv);
  await writeFile(join(dir, 'queued.txt'), `queued ${Date.now()} ${Math.random()}\n`);
  path = (await nixBin(['nix-store', '--add', join(dir, 'queued.txt')])).stdout.trim();
});
after(async () => {
  for (const close of closers.reverse()) await close();
  await testEnv?.close();
  await nixStore.remove();
});

let configs = 0;
async function config(s3Edits: Partial<TestS3>, extraS3 = ''): Promise<string> {
  return testEnv!.configIn(`c${++configs}`, { s3: { ...s3, ...s3Edits }, extraS3 });
}

interface Ended {
  code: number | null;
  stderr: string;
  ms: number;
}

async function runDaemonUntilExit(cfg: string, timeoutMs = 20_000): Promise<Ended> {
  const started = Date.now();
  const child = spawnLoft(['-c', cfg], { env: nixEnv() });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout!.resume();
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((r) => child.on('close', r));
  clearTimeout(timer);
  return { code, stderr, ms: Date.now() - started };
}

function assertOneErrorLine(run: Ended, message: RegExp): void {
  assert.equal(run.code, 4, run.stderr);
  assert.ok(run.ms < 15_000, `exited after ${run.ms} ms`);
  assert.ok(!STACK.test(run.stderr), `no stack trace:\n${run.stderr}`);
  const errors = run.stderr.split('\n').filter((l) => l.startsWith('loft: '));
  assert.equal(errors.length, 1, run.stderr);
  assert.match(errors[0]!, message);
  assert.ok(!logLines(run.stderr).some((l) => l.msg === 'daemon started, watching the store'));
}

async function webServer(status: number): Promise<string> {
  const server = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(status, { 'content-type': 'text/html' }).end('<html>hi</html>'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => (server.closeAllConnections(), server.close(r))));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** A plain TCP relay on `port` to the test's S3 endpoint: the endpoint "coming up". */
async function relay(port: number, to: string): Promise<Server> {
  const target = new URL(to);
  const server = createServer((sock) => {
    const up = connect(Number(target.port), target.hostname);
    sock.pipe(up).pipe(sock);
    sock.on('error', () => up.destroy());
    up.on('error', () => sock.destroy());
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return server;
}

/** A daemon expected to wait for its object store: one warning line per attempt, no exit. */
function waitingDaemon(cfg: string) {
  const child = spawnLoft(['-c', cfg], { env: nixEnv() });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout!.resume();
  const exited = new Promise<number | null>((r) => child.on('close', r));
  const waits = () =>
    logLines(stderr).filter((l) => l.msg === 'object store not reachable yet; trying again');
  return {
    stderr: () => stderr,
    waits,
    async untilWaitedTwice() {
      const end = Date.now() + 40_000;
      while (waits().length < 2 && child.exitCode === null && Date.now() < end) await sleep(200);
      assert.equal(child.exitCode, null, `still running:\n${stderr}`);
      assert.ok(waits().length >= 2, `two attempts logged:\n${stderr}`);
      assert.ok(!STACK.test(stderr), `no stack trace:\n${stderr}`);
    },
    async stopped() {
      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
      assert.ok(!STACK.test(stderr), `no stack trace:\n${stderr}`);
    },
  };
}

describe('daemon start against an unusable object store', () => {
  test('a missing bucket exits 4 with one line', async (t) => {
    if (!requireNix(t)) return;
    const run = await runDaemonUntilExit(await config({ bucket: 'no-such-bucket' }));
    assertOneErrorLine(run, /^loft: bucket "no-such-bucket" at .* does not exist .*: create it or fix/);
  });

  test('a wrong secret key behind a SigV4-verifying proxy exits 4 with one line', async (t) => {
    if (!requireNix(t)) return;
    const proxy = await startSigV4Proxy({ ...s3, target: s3.endpoint });
    closers.push(() => proxy.close());
    const run = await runDaemonUntilExit(
      await config({ endpoint: proxy.endpoint, secretAccessKey: 'not-the-secret' }),
    );
    assertOneErrorLine(run, /^loft: bucket "loft-test" at .* refused .*HTTP 403\): check the access key/);
  });

  for (const status of [404, 200]) {
    test(`a web server answering ${status} that is not S3 exits 4 with one line`, async (t) => {
      if (!requireNix(t)) return;
      const run = await runDaemonUntilExit(await config({ endpoint: await webServer(status) }));
      assertOneErrorLine(run, /^loft: .*"loft-test" at http:\/\/127\.0\.0\.1:\d+.*(endpoint|--debug)/);
    });
  }

  test('https:// against a plain-http port exits 4 and says the endpoint may be http', async (t) => {
    if (!requireNix(t)) return;
    const https = s3.endpoint.replace(/^http:/, 'https:');
    const run = await runDaemonUntilExit(await config({ endpoint: https }));
    assertOneErrorLine(run, /^loft: cannot talk TLS to https:\/\/.*the endpoint may be plain http/);
  });

  test('a closed port is retried with one log line per attempt, then uploads', async (t) => {
    if (!requireNix(t)) return;
    const port = await freePort();
    const d = waitingDaemon(await config({ endpoint: `http://127.0.0.1:${port}` }));
    await d.untilWaitedTwice();
    assert.match(
      String((d.waits()[0]!.err as { message: string }).message),
      /cannot reach .*\(ECONNREFUSED\)/,
    );

    const server = await relay(port, s3.endpoint);
    closers.push(() => new Promise((r) => server.close(r)));
    const narinfo = `${hashPartOfPath(path)}.narinfo`;
    const upEnd = Date.now() + 90_000;
    while (!(await bucketObjects(s3)).has(narinfo) && Date.now() < upEnd) await sleep(500);
    assert.ok((await bucketObjects(s3)).has(narinfo), `uploaded once the endpoint is up:\n${d.stderr()}`);
    await d.stopped();
  });

  test('a server answering 500 is waited out too, and SIGTERM while waiting exits 0', async (t) => {
    if (!requireNix(t)) return;
    const d = waitingDaemon(await config({ endpoint: await webServer(500) }));
    await d.untilWaitedTwice();
    assert.match(String((d.waits()[0]!.err as { message: string }).message), /^list on .* got .*HTTP 500: /);
    await d.stopped();
  });

  test('on a terminal, each attempt is one line too (readable logs), and SIGTERM exits 0', async (t) => {
    if (!requireNix(t)) return;
    const cfg = await config({ endpoint: `http://127.0.0.1:${await freePort()}` }, 'max_attempts = 1');
    // util-linux `script` gives the daemon a pseudo-terminal, so it logs through pino-pretty;
    // `timeout` sends SIGTERM after 6 s and passes the daemon's own exit status on.
    const cmd = ['timeout', '--preserve-status', '-s', 'TERM', '6', process.execPath, LOFT_MAIN, '-c', cfg];
    const { stdout } = await execFileAsync(
      'script',
      ['-qec', `stty cols 300; exec ${cmd.map((a) => `'${a}'`).join(' ')}; `, '/dev/null'],
      { env: nixEnv() },
    );
    recordChildOutput('daemon-on-terminal', Buffer.from(stdout), Buffer.alloc(0));
    // Each log line starts by clearing its row (carriage return, ESC[2K): not a continuation.
    const lines = stdout
      .split(/\r?\n/)
      // eslint-disable-next-line no-control-regex -- the escape sequence is what is removed
      .map((l) => l.replace(/^\r\x1b\[2K/, ''))
      .filter((l) => l.trim() !== '');
    const waits = lines.filter((l) => l.includes('object store not reachable yet'));
    assert.ok(waits.length >= 2, `two attempts logged:\n${stdout}`);
    for (const l of waits) assert.match(l, /E_STORAGE_UNREACHABLE.*cannot reach .*ECONNREFUSED/);
    assert.ok(!lines.some((l) => /^\s/.test(l)), `no continuation lines:\n${stdout}`);
    assert.ok(!STACK.test(stdout), `no stack trace:\n${stdout}`);
  });
});
