// A daemon idle after many uploads starts afresh in the same process (src/cli/fresh-start.ts): the
// built CLI against a private Nix store and a `[local]` directory, with the threshold lowered to 2
// uploads. The process started keeps running (same PID: execve), the new image watches the store
// (a path added afterwards is uploaded), does not upload the drained paths again nor start afresh
// once more, and stops on SIGTERM with exit 0.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startIntegrationEnv, usePrivateNixStore, type IntegrationEnv } from '../helpers/integration-env.js';
import { logLines, spawnLoft } from '../helpers/loft-cli.js';
import { hasNix, nixBin, requireNix } from '../helpers/nix-env.js';
import { hashPartOfPath, writeConfig } from '../helpers/upload-env.js';

const nixStore = usePrivateNixStore('loft-fresh-start-nix-');

let testEnv: IntegrationEnv | undefined;
const drained: string[] = [];

async function addPath(name: string): Promise<string> {
  const file = join(testEnv!.dir, name);
  await writeFile(file, `${name} ${Date.now()} ${Math.random()}\n`);
  return (await nixBin(['nix-store', '--add', file])).stdout.trim();
}

before(async () => {
  if (!hasNix()) return;
  testEnv = await startIntegrationEnv('loft-fresh-start-', 'loft-fresh-start-1');
  for (const n of ['one.txt', 'two.txt', 'three.txt']) drained.push(await addPath(n));
});
after(async () => {
  await testEnv?.close();
  await nixStore.remove();
});

const STARTED = 'daemon started, watching the store';
const AFRESH = 'idle after many uploads: starting afresh to give their memory back';

async function until(what: string, cond: () => boolean, stderr: () => string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}; stderr:\n${stderr()}`);
    await sleep(100);
  }
}

test('the daemon drains, starts afresh in the same process, watches on and stops on SIGTERM', async (t) => {
  if (!requireNix(t)) return;
  const dir = await mkdtemp(join(testEnv!.dir, 'daemon-'));
  const cacheDir = join(dir, 'cache');
  const config = await writeConfig({
    dir,
    localPath: cacheDir,
    signingKeyPath: testEnv!.key.secretPath,
    extraLoft: 'fresh_start_after_uploads = 2',
  });
  const child = spawnLoft(['-c', config]);
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const closed = new Promise<number | null>((res) => child.on('close', res));
  const lines = () => logLines(stderr.slice(0, stderr.lastIndexOf('\n') + 1));
  const count = (msg: string) => lines().filter((l) => l['msg'] === msg).length;
  try {
    // The initial scan's 3 uploads, 5 s idle, the fresh start, and the new image's start.
    await until(
      'the fresh start',
      () => count(AFRESH) === 1 && count(STARTED) === 2,
      () => stderr,
    );
    assert.equal(child.exitCode, null, 'the process started is still running (execve, same PID)');
    const afresh = lines().find((l) => l['msg'] === AFRESH)!;
    assert.equal(afresh['uploadedSinceStart'], 3);

    const late = await addPath('late.txt');
    const narinfo = join(cacheDir, `${hashPartOfPath(late)}.narinfo`);
    await until(
      'the new image uploading a new path',
      () => existsSync(narinfo),
      () => stderr,
    );
    // Past the new image's idle release: one upload is no reason to start afresh again.
    await sleep(7_000);
    assert.equal(count(AFRESH), 1, stderr);
    assert.equal(count(STARTED), 2, stderr);
    const uploaded = lines()
      .filter((l) => l['msg'] === 'uploaded')
      .map((l) => l['path']);
    assert.deepEqual(uploaded.sort(), [...drained, late].sort(), 'each path uploaded once');
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await closed, 0, stderr);
  assert.equal(count('daemon stopped'), 2, 'the first image stopped as on SIGTERM, then the second');
});
