// The README's post-build hook, run by the machine's Nix during a real `nix-build`, then the daemon
// uploading what the hook queued. Nix 2.8 (Debian 12's) gives the hook an empty OUT_PATHS and only
// DRV_PATH (seen with `nix-build --option post-build-hook`), so `loft --enqueue $OUT_PATHS` gets no
// argument at all there; a hook that exits non-zero fails the build.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkBucket } from '../helpers/bucket-invariants.js';
import { randomSalt } from '../helpers/fixtures.js';
import { startIntegrationEnv, type IntegrationEnv } from '../helpers/integration-env.js';
import { LOFT_MAIN, runLoft, spawnLoft } from '../helpers/loft-cli.js';
import { hasNix, nixBin, requireNix } from '../helpers/nix-env.js';
import type { TestS3 } from '../helpers/s3-server.js';
import type { KeyFiles } from '../helpers/signing-keys.js';
import {
  bucketObjects,
  deleteLocally,
  hashPartOfPath,
  httpCacheUrl,
  substitute,
  writeConfig,
} from '../helpers/upload-env.js';

let testEnv: IntegrationEnv | undefined;
let dir: string;
let s3: TestS3;
let key: KeyFiles;
before(async () => {
  if (!hasNix()) return;
  testEnv = await startIntegrationEnv('loft-hook-nix-', 'loft-hook-test-1');
  ({ dir, s3, key } = testEnv);
});
after(async () => {
  await testEnv?.close();
});

/** The README's hook script, with this checkout's CLI in place of an installed `loft`. */
async function writeHook(config: string): Promise<string> {
  const path = join(dir, 'upload-to-cache.sh');
  const loft = `${JSON.stringify(process.execPath)} ${JSON.stringify(LOFT_MAIN)}`;
  await writeFile(path, `#!/bin/sh\nexec ${loft} -c ${JSON.stringify(config)} --enqueue $OUT_PATHS\n`);
  await chmod(path, 0o755);
  return path;
}

async function writeDerivation(salt: string): Promise<string> {
  const path = join(dir, `hook-${salt}.nix`);
  await writeFile(
    path,
    `derivation {
  name = "loft-hook-out";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  PATH = "/usr/bin:/bin";
  salt = "${salt}";
  args = [ "-c" "mkdir $out && echo built-by-nix > $out/file" ];
}
`,
  );
  return path;
}

async function waitForNarinfo(path: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if ((await bucketObjects(s3)).has(`${hashPartOfPath(path)}.narinfo`)) return;
    await sleep(250);
  }
  throw new Error(`${path} was not uploaded within ${timeoutMs} ms`);
}

describe('the post-build hook under a real nix-build', () => {
  test('Nix runs the README hook, the build succeeds, the daemon uploads the output', async (t) => {
    if (!requireNix(t)) return;
    const config = await writeConfig({
      dir,
      s3,
      signingKeyPath: key.secretPath,
      extraLoft: 'scan_on_startup = false',
    });
    const hook = await writeHook(config);
    const expr = await writeDerivation(randomSalt());
    // Rejects (and so fails the test) when the hook fails the build.
    const build = await nixBin(['nix-build', '--no-out-link', '--option', 'post-build-hook', hook, expr]);
    const out = build.stdout.trim();
    assert.match(out, /^\/nix\/store\/[a-z0-9]{32}-loft-hook-out$/);
    const status = await runLoft(['-c', config, '--status']);
    assert.match(status.stdout, /^queued: 1 path waiting for upload$/m, status.stdout + status.stderr);
    assert.match(status.stdout, /^initial scan: off \(scan_on_startup = false\)$/m);

    // --debug: the worker's and watcher's lines are debug lines.
    const daemon = spawnLoft(['--debug', '-c', config]);
    let stderr = '';
    daemon.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => daemon.on('close', resolve));
    try {
      await waitForNarinfo(out);
    } finally {
      daemon.kill('SIGTERM');
      assert.equal(await exited, 0);
    }
    // Every JSON line names its component once (nested loggers used to repeat the key).
    const lines = stderr.split('\n').filter((l) => l.startsWith('{'));
    assert.ok(
      lines.some((l) => l.includes('"component":"worker"')),
      stderr,
    );
    for (const l of lines) assert.ok((l.match(/"component":/g) ?? []).length <= 1, l);
    assert.match(stderr, new RegExp(`"signedBy":"${key.name}".*"msg":"daemon started`));
    const check = await checkBucket(s3, { publicKey: key.publicKey });
    assert.deepEqual(check.violations, []);
    assert.ok(check.storePaths.includes(out), `bucket holds ${check.storePaths.join(' ')}`);
    await deleteLocally([out]);
    await substitute([out], httpCacheUrl(s3), key.publicKey);
  });
});
