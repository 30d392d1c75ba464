// bin/loft, the launcher for a checkout: it must run the built CLI with the checkout's own node
// when there is one, say clearly when nothing is built, and exec (not fork) so that SIGTERM reaches
// loft itself: the reason it exists instead of `npx loft`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { isBuilt } from '../helpers/loft-cli.js';
import { hasNix, nixEnv, requireNix } from '../helpers/nix-env.js';
import { recordChildOutput } from '../helpers/test-secrets.js';

const execFileAsync = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LAUNCHER = join(ROOT, 'bin', 'loft');
const version = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

/** The Node major version in `loft --version`'s "VERSION (Node vX.Y.Z)"; throws on another shape. */
function nodeMajor(out: string): number {
  const m = new RegExp(`^${version.replace(/\./g, '\\.')} \\(Node v(\\d+)\\.\\d+\\.\\d+\\)$`).exec(
    out.trim(),
  );
  assert.ok(m?.[1], `unexpected --version output: ${JSON.stringify(out)}`);
  return Number(m[1]);
}

/** Runs a launcher; resolves with its code and output whatever the code. */
async function run(launcher: string, args: string[], env = nixEnv()) {
  let r: { code: number; stdout: string; stderr: string };
  try {
    const { stdout, stderr } = await execFileAsync(launcher, args, { env });
    r = { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    r = { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
  recordChildOutput('bin-loft', Buffer.from(r.stdout), Buffer.from(r.stderr));
  return r;
}

void describe('bin/loft', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loft-bin-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('runs the built CLI from any working directory', async () => {
    assert.ok(isBuilt(), "run 'npm run build' first");
    const r = await run(LAUNCHER, ['--version']);
    assert.equal(r.code, 0, r.stderr);
    // The checkout's own node (the bootstrap's pinned one) runs it: a supported Node.
    assert.ok(nodeMajor(r.stdout) >= 22, r.stdout);
  });

  test("prefers the checkout's node_modules/.bin/node, else node on PATH; without dist/ it says what to do", async () => {
    // A checkout of its own: the launcher copied, dist/ linked to the real build.
    const co = join(dir, 'checkout');
    await mkdir(join(co, 'bin'), { recursive: true });
    await copyFile(LAUNCHER, join(co, 'bin', 'loft'));
    const bare = await run(join(co, 'bin', 'loft'), ['--version']);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /^loft: .*dist\/cli\/main\.js is missing: run 'npm ci && npm run build' in /);
    await symlink(join(ROOT, 'dist'), join(co, 'dist'));
    const onPath = await run(join(co, 'bin', 'loft'), ['--version']);
    assert.equal(onPath.code, 0, onPath.stderr);
    const marker = join(dir, 'checkout-node-ran');
    await mkdir(join(co, 'node_modules', '.bin'), { recursive: true });
    await writeFile(
      join(co, 'node_modules', '.bin', 'node'),
      `#!/bin/sh\ntouch '${marker}'\nexec '${process.execPath}' "$@"\n`,
      { mode: 0o755 },
    );
    assert.ok(!existsSync(marker));
    const own = await run(join(co, 'bin', 'loft'), ['--version']);
    assert.equal(own.code, 0, own.stderr);
    assert.equal(nodeMajor(own.stdout), nodeMajor(`${version} (Node ${process.version})`));
    assert.ok(existsSync(marker), "the checkout's node ran");
  });

  test('SIGTERM to the launched daemon reaches loft: it stops cleanly with exit 0', async (t) => {
    if (!requireNix(t) || !hasNix()) return;
    const config = join(dir, 'loft.toml');
    await writeFile(
      config,
      `[local]\npath = "${join(dir, 'cache')}"\n[loft]\nlocal_cache_path = "${join(dir, 'cache.db')}"\nscan_on_startup = false\n`,
    );
    // A process group of its own: should the launcher fork instead of exec, the SIGTERM would end
    // only the shell, and the whole group is killed below rather than left running.
    const child = spawn(LAUNCHER, ['-c', config], {
      env: nixEnv(),
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true,
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const end = Date.now() + 20_000;
    while (!stderr.includes('daemon started') && Date.now() < end && child.exitCode === null) await sleep(50);
    assert.match(stderr, /daemon started/);
    child.kill('SIGTERM'); // to the launcher's PID: after exec, that is loft
    const code = await Promise.race([exited, sleep(15_000, 'still running' as const)]);
    if (code === 'still running') process.kill(-child.pid!, 'SIGKILL');
    assert.equal(code, 0, stderr);
    assert.match(stderr, /daemon stopped/);
    recordChildOutput('bin-loft-daemon', Buffer.alloc(0), Buffer.from(stderr));
  });
});
