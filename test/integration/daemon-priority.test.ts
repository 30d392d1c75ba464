// New builds before the initial scan's backlog, end to end: the built CLI as a daemon, s3rver, and
// the machine's Nix with a PRIVATE store of thousands of valid paths. The daemon's first start
// queues them all (scan_on_startup); ten paths built after that must be in the bucket within 5 s
// while at least 1,000 scanned paths still wait, as `--status` and /metrics show at that moment.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomSalt } from '../helpers/fixtures.js';
import { startIntegrationEnv, usePrivateNixStore, type IntegrationEnv } from '../helpers/integration-env.js';
import { logLines, runLoft, spawnLoft } from '../helpers/loft-cli.js';
import { hasNix, nixBin, nixEnv, requireNix } from '../helpers/nix-env.js';
import { hashPartOfPath, httpCacheUrl } from '../helpers/upload-env.js';

const nixStore = usePrivateNixStore('loft-priority-nix-');
// The scanned paths are written by evaluation, not built. Without an fsync per path Nix 2.8 adds
// 3,000 text files in about 2 s here, against 26 s with one; nothing here outlives the test.
process.env.NIX_CONFIG = `fsync-metadata = false\n${process.env.NIX_CONFIG ?? ''}`;

/** Valid paths in the store before the daemon starts: its initial scan's backlog. */
const SCANNED = 4000;
const BUILT = 10;
const STORED_WITHIN_MS = 5000;
const BACKLOG_AT_LEAST = 1000;

/** `n` text files, no references between them, added to the store while evaluating; their paths. */
async function addTextFiles(dir: string, n: number): Promise<string[]> {
  const file = join(dir, 'scanned.nix');
  await writeFile(
    file,
    `{ salt, n }: builtins.genList (i: builtins.toFile "scanned-\${toString i}" "\${salt} \${toString i}\\n") n\n`,
  );
  const { stdout } = await nixBin([
    'nix-instantiate',
    '--read-write-mode',
    '--eval',
    '--strict',
    '--json',
    file,
    '--argstr',
    'salt',
    randomSalt(),
    '--arg',
    'n',
    String(n),
  ]);
  return JSON.parse(stdout) as string[];
}

/** Builds `n` tiny derivations in one nix-build; returns their outputs once all are valid. */
async function buildNew(n: number): Promise<string[]> {
  const expr = `builtins.genList (i: derivation { name = "loft-new-\${toString i}"; system = builtins.currentSystem; builder = "/bin/sh"; salt = "${randomSalt()}"; args = [ "-c" "echo \${toString i} > $out" ]; }) ${n}`;
  const { stdout } = await nixBin(['nix-build', '--no-out-link', '-E', expr]);
  return stdout.trim().split('\n');
}

async function stored(cacheUrl: string, path: string): Promise<boolean> {
  const res = await fetch(`${cacheUrl}/${hashPartOfPath(path)}.narinfo`, { method: 'HEAD' });
  return res.status === 200;
}

async function scrape(port: number): Promise<Map<string, number>> {
  const values = new Map<string, number>();
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const [name, value] = line.split(' ');
    values.set(name!, Number(value));
  }
  return values;
}

after(() => nixStore.remove());

void describe('loft daemon: new builds before the initial scan', { concurrency: false }, () => {
  let testEnv: IntegrationEnv | undefined;
  let daemon: ChildProcess | undefined;
  let scanned: string[] = [];

  before(async () => {
    if (!hasNix()) return;
    testEnv = await startIntegrationEnv('loft-priority-', 'loft-test-1');
    scanned = await addTextFiles(testEnv.dir, SCANNED);
  });
  after(async () => {
    if (daemon && daemon.exitCode === null) daemon.kill('SIGKILL');
    await testEnv?.close();
  });

  test(`${BUILT} paths built during the scan of ${SCANNED} are stored within 5 s, ahead of the backlog`, async (t) => {
    if (!requireNix(t)) return;
    const env = testEnv!;
    const extraLoft = 'scan_on_startup = true\nmetrics_listen = "127.0.0.1:0"';
    const config = await env.config({ extraLoft });
    daemon = spawnLoft(['-c', config], { env: nixEnv() });
    let stderr = '';
    daemon.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const line = async (msg: string) => {
      for (let i = 0; i < 600; i++) {
        const found = logLines(stderr).find((l) => l.msg === msg);
        if (found) return found;
        if (daemon!.exitCode !== null) break;
        await sleep(50);
      }
      throw new Error(`no "${msg}" log line; stderr:\n${stderr}`);
    };
    const served = await line('serving Prometheus metrics at /metrics');
    const port = (served.address as { port: number }).port;
    const scan = await line('initial scan queued the store');
    assert.ok(Number(scan.paths) >= SCANNED, `the scan queued ${String(scan.paths)} paths`);

    // Plus one scanned path named by the hook (`--enqueue`): the last of the backlog's order (same
    // due time, then by path), so only moving up brings it in time.
    const hooked = scanned.reduce((a, b) => (hashPartOfPath(a) > hashPartOfPath(b) ? a : b));
    const built = await buildNew(BUILT);
    const start = performance.now();
    const enqueue = await runLoft(['-c', config, '--enqueue', hooked]);
    assert.equal(enqueue.code, 0, enqueue.stderr);
    const cacheUrl = httpCacheUrl(env.s3);
    let left = [...built, hooked];
    while (left.length > 0 && performance.now() - start < 60_000) {
      const present = await Promise.all(left.map((p) => stored(cacheUrl, p)));
      left = left.filter((_, i) => !present[i]);
      if (left.length > 0) await sleep(20);
    }
    const tookMs = performance.now() - start;
    const gauges = await scrape(port);
    const status = await runLoft(['-c', config, '--status']);
    t.diagnostic(`${BUILT} builds and 1 hooked path stored ${tookMs.toFixed(0)} ms after nix-build returned`);
    t.diagnostic(status.stdout.split('\n').slice(0, 2).join(' / '));
    assert.deepEqual(left, [], 'every new build, and the hooked path, stored');
    assert.ok(tookMs <= STORED_WITHIN_MS, `stored after ${tookMs.toFixed(0)} ms`);
    const backlog = gauges.get('loft_queue_scan_backlog_paths') ?? 0;
    assert.ok(backlog >= BACKLOG_AT_LEAST, `${backlog} scanned paths still waiting (/metrics)`);
    const m = /^ {2}of which new builds: \d+ \(uploaded first\); store scan backlog: (\d+)/m.exec(
      status.stdout,
    );
    assert.ok(m && Number(m[1]) >= BACKLOG_AT_LEAST, `--status: ${status.stdout}`);

    // --wait at the end of a CI job waits for the job's builds, not for the scan of the store.
    const wait = await runLoft(['-c', config, '--wait', '--timeout', '10']);
    assert.equal(wait.code, 0, wait.stderr);
    assert.match(wait.stdout, /^\d+ paths of the daemon's store scan still wait behind; not waited for$/m);

    daemon.kill('SIGTERM');
    const code = await new Promise((resolve) => daemon!.once('close', resolve));
    assert.equal(code, 0, stderr);
  });
});
