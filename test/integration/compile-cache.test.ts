// A one-off upload keeps V8's compiled code of the modules it loads in compile-cache beside its local
// state, and the next run uses it (src/cli/compile-cache.ts). The built CLI uploads one path to a
// `[local]` directory twice; Node's own debug output (NODE_DEBUG_NATIVE=COMPILE_CACHE) says, on the
// second run, which cached code V8 accepted.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLoft } from '../helpers/loft-cli.js';
import { hasNix, nixBin, requireNix } from '../helpers/nix-env.js';

let dir: string;
let path: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loft-compile-cache-'));
  if (!hasNix()) return;
  await writeFile(join(dir, 'one.txt'), `one ${Date.now()} ${Math.random()}\n`);
  path = (await nixBin(['nix-store', '--add', join(dir, 'one.txt')])).stdout.trim();
  await mkdir(join(dir, 'state'));
  await writeFile(
    join(dir, 'loft.toml'),
    '[loft]\nlocal_cache_path = "state/cache.db"\n\n[local]\npath = "cache"\n',
  );
});
after(async () => {
  if (path !== undefined) await nixBin(['nix-store', '--delete', path]).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

/** The module URLs whose cached code V8 accepted, from Node's compile-cache debug lines. */
function accepted(stderr: string): string[] {
  return [...stderr.matchAll(/V8 code cache for \S+ (file:\S+) was accepted/g)].map((m) => m[1]!);
}

test('a second upload loads the upload code from the cache the first one wrote', async (t) => {
  if (!requireNix(t)) return;
  const args = ['-c', join(dir, 'loft.toml'), '--upload-path', path];
  const first = await runLoft(args, { cwd: dir, env: { NODE_DEBUG_NATIVE: 'COMPILE_CACHE' } });
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(accepted(first.stderr), [], 'nothing to accept before the first run wrote the cache');
  const versions = await readdir(join(dir, 'state', 'compile-cache'));
  assert.equal(versions.length, 1, `one folder per Node version: ${versions.join(', ')}`);
  assert.ok((await readdir(join(dir, 'state', 'compile-cache', versions[0]!))).length > 10);

  const second = await runLoft(args, { cwd: dir, env: { NODE_DEBUG_NATIVE: 'COMPILE_CACHE' } });
  assert.equal(second.code, 0, second.stderr);
  const urls = accepted(second.stderr);
  assert.ok(
    urls.some((u) => u.endsWith('/dist/cli/upload-command.js')),
    `upload-command.js from the cache: ${urls.length} modules accepted`,
  );
});

test('NODE_DISABLE_COMPILE_CACHE=1 turns it off', async (t) => {
  if (!requireNix(t)) return;
  const args = ['-c', join(dir, 'loft.toml'), '--upload-path', path];
  const run = await runLoft(args, {
    cwd: dir,
    env: { NODE_DEBUG_NATIVE: 'COMPILE_CACHE', NODE_DISABLE_COMPILE_CACHE: '1' },
  });
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(accepted(run.stderr), []);
});
