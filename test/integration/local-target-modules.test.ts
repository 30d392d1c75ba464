// A daemon writing to a `[local]` directory never loads the AWS SDK: the SDK alone costs about 32 MB
// of resident memory, more than a third of what the idle daemon may hold (issue 27's 80 MB). The
// built CLI runs with a module hook (node:module's registerHooks) that writes down every module it
// loads; the same hook with an S3 target shows that the check sees the SDK when it is there.
// Nix runs against a private store, so the daemon's initial scan finds the one path added here.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startIntegrationEnv, usePrivateNixStore, type IntegrationEnv } from '../helpers/integration-env.js';
import { LOFT_MAIN, logLines } from '../helpers/loft-cli.js';
import { hasNix, nixBin, nixEnv, requireNix } from '../helpers/nix-env.js';
import { recordChildOutput } from '../helpers/test-secrets.js';
import { hashPartOfPath, writeConfig } from '../helpers/upload-env.js';

const nixStore = usePrivateNixStore('loft-local-modules-nix-');

/**
 * Appends the URL of every module the process loads (ESM and require alike) to $LOFT_MODULE_LOG,
 * and at exit Node's own list of the built-in modules it loaded, as `builtin:<id>` lines.
 */
const HOOK = `import { registerHooks } from 'node:module';
import { appendFileSync } from 'node:fs';
const log = process.env.LOFT_MODULE_LOG;
registerHooks({ load(url, context, next) { appendFileSync(log, url + '\\n'); return next(url, context); } });
process.on('exit', () => {
  const builtins = process.moduleLoadList.filter((m) => m.startsWith('NativeModule '));
  appendFileSync(log, builtins.map((m) => 'builtin:' + m.slice('NativeModule '.length) + '\\n').join(''));
});
`;

/** Module URLs that belong to the AWS SDK (its packages and the Smithy runtime under it). */
const SDK = /\/node_modules\/@(aws-sdk|smithy|aws-crypto)\//;

let testEnv: IntegrationEnv | undefined;
let hook: string;
let path: string;

before(async () => {
  if (!hasNix()) return;
  testEnv = await startIntegrationEnv('loft-local-modules-', 'loft-local-modules-1');
  hook = join(testEnv.dir, 'module-log.mjs');
  await writeFile(hook, HOOK);
  await writeFile(join(testEnv.dir, 'one.txt'), `one ${Date.now()} ${Math.random()}\n`);
  path = (await nixBin(['nix-store', '--add', join(testEnv.dir, 'one.txt')])).stdout.trim();
});
after(async () => {
  await testEnv?.close();
  await nixStore.remove();
});

interface Run {
  modules: string[];
  stderr: string;
  code: number | null;
}

/**
 * Runs the built CLI with the hook; `until` (given the stderr so far) says when to send SIGTERM to
 * a daemon, or undefined for a command that ends by itself.
 */
async function runWithHook(name: string, args: string[], until?: (stderr: string) => boolean): Promise<Run> {
  const moduleLog = join(testEnv!.dir, `${name}.modules`);
  const child = spawn(process.execPath, ['--import', pathToFileURL(hook).href, LOFT_MAIN, ...args], {
    env: { ...nixEnv(), LOFT_MODULE_LOG: moduleLog },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const closed = new Promise<number | null>((res) => child.on('close', res));
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  if (until !== undefined) {
    while (child.exitCode === null && !until(stderr)) await sleep(50);
    child.kill('SIGTERM');
  }
  const code = await closed;
  clearTimeout(timer);
  recordChildOutput(name, '', stderr);
  const modules = existsSync(moduleLog) ? (await readFile(moduleLog, 'utf8')).split('\n') : [];
  return { modules, stderr, code };
}

const loaded = (r: Run, file: string) => r.modules.some((m) => m.endsWith(file));

void describe('a [local] target loads no AWS SDK', () => {
  void test('a daemon scans, uploads to a directory, idles and stops without loading it', async (t) => {
    if (!requireNix(t)) return;
    const dir = await mkdtemp(join(testEnv!.dir, 'daemon-'));
    const cacheDir = join(dir, 'cache');
    const config = await writeConfig({ dir, localPath: cacheDir, signingKeyPath: testEnv!.key.secretPath });
    const narinfo = join(cacheDir, `${hashPartOfPath(path)}.narinfo`);
    // Past the idle release (5 s after the batch), which must not load anything either.
    let uploadedAt: number | undefined;
    const r = await runWithHook('daemon-local', ['-c', config], () => {
      if (uploadedAt === undefined && existsSync(narinfo)) uploadedAt = Date.now();
      return uploadedAt !== undefined && Date.now() - uploadedAt > 6_000;
    });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(narinfo), 'the daemon uploaded the path');
    assert.ok(
      logLines(r.stderr).some((l) => l['msg'] === 'uploaded'),
      r.stderr,
    );
    for (const file of ['/storage/local-object-store.js', '/upload/upload-path.js', '/daemon/daemon.js'])
      assert.ok(loaded(r, file), `the hook saw ${file} load`);
    assert.deepEqual(
      r.modules.filter((m) => SDK.test(m)),
      [],
    );
    // Nor Node's bundled undici (and node:http2 with it), which an ES import of node:http pulls in
    // (daemon/metrics-server.ts); metrics are off here.
    assert.ok(loaded(r, 'builtin:fs'), 'the hook saw the built-in modules');
    assert.deepEqual(
      r.modules.filter((m) => m.includes('undici') || m === 'builtin:http2'),
      [],
    );
  });

  void test('the daemon runs with MALLOC_ARENA_MAX=2 in the process it was started as, unless set', async (t) => {
    if (!requireNix(t)) return;
    if (process.platform !== 'linux') {
      t.skip('glibc and /proc/PID/environ: Linux only');
      return;
    }
    const dir = await mkdtemp(join(testEnv!.dir, 'arenas-'));
    const config = await writeConfig({
      dir,
      localPath: join(dir, 'cache'),
      signingKeyPath: testEnv!.key.secretPath,
      extraLoft: 'scan_on_startup = false',
    });
    for (const [given, expected] of [
      [undefined, '2'],
      ['8', '8'],
    ] as const) {
      const child = spawn(process.execPath, [LOFT_MAIN, '-c', config], {
        env: { ...nixEnv(), ...(given === undefined ? {} : { MALLOC_ARENA_MAX: given }) },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const closed = new Promise<number | null>((res) => child.on('close', res));
      const end = Date.now() + 30_000;
      while (!stderr.includes('daemon started') && child.exitCode === null && Date.now() < end)
        await sleep(50);
      // The same PID: the exec replaced the program, not the process.
      const environ = (await readFile(`/proc/${child.pid}/environ`, 'utf8')).split('\0');
      child.kill('SIGTERM');
      assert.equal(await closed, 0, stderr);
      recordChildOutput('daemon-arenas', '', stderr);
      assert.ok(
        environ.includes(`MALLOC_ARENA_MAX=${expected}`),
        `MALLOC_ARENA_MAX=${expected} in the daemon`,
      );
    }
  });

  void test('the check sees the SDK of an S3 target', async (t) => {
    if (!requireNix(t)) return;
    const config = await testEnv!.configIn('s3');
    const r = await runWithHook('upload-s3', ['-c', config, '--upload-path', path]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      r.modules.some((m) => m.includes('/node_modules/@aws-sdk/client-s3/')),
      'client-s3 loaded',
    );
  });
});
