// The commands root runs against the service's state with the module's loft.toml: `loft --enqueue`
// as Nix's post-build hook, and `loft --status` from an admin's shell. Both work although the
// service's secret files (systemd credentials) are out of reach, and, as root, both act as the owner
// of the daemon's state directory (src/cli/state-owner.ts), so they never leave a database file
// behind that the daemon's own user could not write.
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { parse, stringify } from 'smol-toml';
import { loadConfig } from '../../src/config/load.js';
import { LOFT_MAIN, runLoft } from '../helpers/loft-cli.js';
import { BUCKET, render, type Table } from '../helpers/nix-module.js';
import { nixBin, requireNix } from '../helpers/nix-env.js';
import { skipTest } from '../helpers/skip.js';

const execFileAsync = promisify(execFile);
const NOBODY = { uid: 65534, gid: 65534 };

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loft-post-build-hook-'));
  await chmod(dir, 0o755); // the tests run loft as another user inside it
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const fakePath = (name: string) =>
  `/nix/store/${Array.from(randomBytes(32), (b) => '0123456789abcdfghijklmnpqrsvwxyz'[b % 32]).join('')}-${name}`;
const queued = (db: string): string[] => {
  const handle = new Database(db);
  try {
    return (handle.prepare('SELECT path FROM queue ORDER BY path').all() as Array<{ path: string }>).map(
      (r) => r.path,
    );
  } finally {
    handle.close();
  }
};
/** The module's loft.toml (credentials in a directory that does not exist here) with its state in `state`. */
async function hookConfig(state: string): Promise<string> {
  const { settings, problems } = await render(
    {
      s3: {
        ...BUCKET.s3,
        accessKeyFile: '/run/a',
        secretKeyFile: '/run/s',
        extraHeadersFile: { 'X-H': '/run/h' },
      },
      signingKeyPath: '/run/k',
      localCachePath: join(state, 'cache.db'),
    },
    { stateDir: state, credentialsDir: join(dir, 'no-such-credentials') },
  );
  assert.deepEqual(problems, []);
  const path = join(dir, `hook-${randomBytes(4).toString('hex')}.toml`);
  await writeFile(path, stringify(settings), { mode: 0o644 });
  return path;
}
/** Every file in `state` with its owner, to compare with the expected owner. */
async function owners(state: string) {
  const found = [];
  for (const name of (await readdir(state)).sort()) {
    const s = await stat(join(state, name));
    found.push({ name, uid: s.uid, gid: s.gid });
  }
  return found;
}
/** Runs loft as the daemon's user (uid 65534), as the service would. */
async function runAsNobody(args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('setpriv', [
    `--reuid=${NOBODY.uid}`,
    `--regid=${NOBODY.gid}`,
    '--clear-groups',
    '--',
    process.execPath,
    LOFT_MAIN,
    ...args,
  ]);
  return stdout;
}

/**
 * Whether uid 65534 can run the built CLI and open SQLite. A checkout inside a private directory
 * (a home of mode 0700) cannot be read by it; loft itself is then fine, but these tests cannot
 * switch users, and say so instead of failing for a reason that is not loft's.
 */
async function nobodyCanRunLoft(): Promise<boolean> {
  const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
  const probe = `require('fs').accessSync(${JSON.stringify(LOFT_MAIN)}); new (require(${JSON.stringify(sqlite)}))(':memory:')`;
  try {
    await execFileAsync('setpriv', [
      `--reuid=${NOBODY.uid}`,
      `--regid=${NOBODY.gid}`,
      '--clear-groups',
      '--',
      process.execPath,
      '-e',
      probe,
    ]);
    return true;
  } catch {
    return false;
  }
}
const NOBODY_CANNOT_READ = 'uid 65534 cannot read this checkout (it lies in a private directory)';

describe('the post-build hook: loft --enqueue', () => {
  test("queues paths although the service's secret files are out of reach", async (t) => {
    if (!requireNix(t)) return;
    const state = await mkdtemp(join(dir, 'state-'));
    const config = await hookConfig(state);
    const paths = [fakePath('a'), fakePath('b')];
    const run = await runLoft(['--config', config, '--enqueue', ...paths]);
    assert.deepEqual([run.code, run.stdout.trim(), run.stderr], [0, 'queued 2 paths for upload (2 new)', '']);
    assert.deepEqual(queued(join(state, 'cache.db')), [...paths].sort());
    // Loading the same file with its secrets, as the service does, fails: they are really absent.
    await assert.rejects(
      loadConfig({ path: config, explicit: true, env: {} }),
      /cannot read .*no-such-credentials/,
    );
  });

  test('exits 0 whatever its arguments; without paths it reads OUT_PATHS', async (t) => {
    if (!requireNix(t)) return;
    const state = await mkdtemp(join(dir, 'args-'));
    const config = await hookConfig(state);
    const noEnv = { OUT_PATHS: '', DRV_PATH: '' };
    const nothing = await runLoft(['--config', config, '--enqueue'], { env: noEnv });
    assert.deepEqual([nothing.code, nothing.stdout], [0, '']);
    assert.match(nothing.stderr, /^loft: warning: nothing to queue: .*OUT_PATHS.*DRV_PATH/);
    const badFlag = await runLoft(['--config', config, '--enqueue', '--no-such-flag']);
    assert.equal(badFlag.code, 0);
    assert.match(badFlag.stderr, /^loft: warning: could not queue paths for upload: unknown option/);
    // A derivation that was never built: DRV_PATH names it, but no output is valid.
    const expr = `derivation { name = "loft-unbuilt"; system = builtins.currentSystem; builder = "/bin/sh"; salt = "${randomBytes(8).toString('hex')}"; }`;
    const drv = (await nixBin(['nix-instantiate', '-E', expr])).stdout.trim();
    const unbuilt = await runLoft(['--config', config, '--enqueue'], {
      env: { OUT_PATHS: '', DRV_PATH: drv },
    });
    assert.deepEqual([unbuilt.code, unbuilt.stdout], [0, '']);
    assert.equal(
      unbuilt.stderr,
      `loft: warning: nothing to queue: no output of ${drv} is a valid store path\n`,
    );
    const outPaths = [fakePath('k'), fakePath('l')];
    const fromEnv = await runLoft(['--config', config, '--enqueue'], {
      env: { OUT_PATHS: outPaths.join(' '), DRV_PATH: '' },
    });
    assert.deepEqual([fromEnv.code, fromEnv.stdout.trim()], [0, 'queued 2 paths for upload (2 new)']);
    assert.deepEqual(queued(join(state, 'cache.db')), [...outPaths].sort());
  });

  test("as root, it writes the queue as the owner of the daemon's state directory", async (t) => {
    if (!requireNix(t)) return;
    if (process.getuid?.() !== 0) return skipTest(t, 'root', 'Nix runs post-build hooks as root');
    if (!(await nobodyCanRunLoft())) return skipTest(t, 'readable-checkout', NOBODY_CANNOT_READ);
    const owned = await mkdtemp(join(dir, 'owned-'));
    await chown(owned, NOBODY.uid, NOBODY.gid);
    const config = await hookConfig(owned);
    const first = await runLoft(['--config', config, '--enqueue', fakePath('c'), fakePath('d')]);
    assert.equal(first.code, 0, first.stderr);
    for (const o of await owners(owned)) assert.deepEqual(o, { name: o.name, ...NOBODY });
    // The daemon's user can still write its queue after root's hook ran.
    const stdout = await runAsNobody(['--config', config, '--enqueue', fakePath('e')]);
    assert.equal(stdout.trim(), 'queued 1 path for upload (1 new)');
    assert.equal(queued(join(owned, 'cache.db')).length, 3);
    // Control: root's own directory keeps a root-owned database.
    const rootOwned = await mkdtemp(join(dir, 'root-'));
    await runLoft(['--config', await hookConfig(rootOwned), '--enqueue', fakePath('f')]);
    assert.equal((await stat(join(rootOwned, 'cache.db'))).uid, 0);
  });
});

describe("loft --status on the service's state", () => {
  test("answers although the service's secret files do not exist", async (t) => {
    if (!requireNix(t)) return;
    const state = await mkdtemp(join(dir, 'status-'));
    const config = await hookConfig(state);
    // The file names every secret loft reads, and none of them exists here.
    const { s3, loft } = parse(await readFile(config, 'utf8')) as { s3: Table; loft: Table };
    const secrets = [s3['access_key_file'], s3['secret_key_file'], loft['signing_key_path']];
    assert.ok(
      secrets.every((p) => typeof p === 'string' && !existsSync(p)),
      `secret files: ${JSON.stringify(secrets)}`,
    );
    const paths = [fakePath('g'), fakePath('h'), fakePath('i')];
    assert.equal((await runLoft(['--config', config, '--enqueue', ...paths])).code, 0);
    const run = await runLoft(['--config', config, '--status']);
    assert.deepEqual([run.code, run.stderr], [0, '']);
    const lines = run.stdout.trim().split('\n');
    assert.equal(lines[0], 'queued: 3 paths waiting for upload');
    assert.ok(
      lines.includes(`presence cache: 0 paths known to be in the cache (${join(state, 'cache.db')})`),
    );
  });

  test("as root, it creates a missing database as the owner of the daemon's state directory", async (t) => {
    if (!requireNix(t)) return;
    if (process.getuid?.() !== 0) return skipTest(t, 'root', 'an admin runs --status as root');
    if (!(await nobodyCanRunLoft())) return skipTest(t, 'readable-checkout', NOBODY_CANNOT_READ);
    const owned = await mkdtemp(join(dir, 'status-owned-'));
    await chown(owned, NOBODY.uid, NOBODY.gid);
    const config = await hookConfig(owned);
    assert.deepEqual(await readdir(owned), []);
    const run = await runLoft(['--config', config, '--status']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^queued: 0 paths waiting for upload$/m);
    const files = await owners(owned);
    assert.ok(
      files.some((f) => f.name === 'cache.db'),
      `files: ${JSON.stringify(files)}`,
    );
    for (const o of files) assert.deepEqual(o, { name: o.name, ...NOBODY });
    // The daemon's user can write the database root's --status created.
    const stdout = await runAsNobody(['--config', config, '--enqueue', fakePath('j')]);
    assert.equal(stdout.trim(), 'queued 1 path for upload (1 new)');
    assert.equal(queued(join(owned, 'cache.db')).length, 1);
  });
});
