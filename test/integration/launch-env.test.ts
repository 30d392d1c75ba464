// The environment loft's launchers give Node (src/cli/launch-env.ts): the npm bin's shebang, the
// checkout's bin/loft and the Nix package's wrapper each set exactly LAUNCH_ENV before Node starts.
// A recording `node` (a script that writes its environment, then runs the real Node) stands where
// each launcher looks for Node, and the real CLI runs behind it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { LAUNCH_ENV } from '../../src/cli/launch-env.js';
import { isBuilt } from '../helpers/loft-cli.js';
import { nixEval, nixPath, nixpkgsLib, ROOT } from '../helpers/nix-module.js';
import { requireNix } from '../helpers/nix-env.js';

const execFileAsync = promisify(execFile);
const NAMES = Object.keys(LAUNCH_ENV);

/** A `node` that writes its environment (NUL-separated, as /proc/PID/environ) to `record`. */
async function recordingNode(dir: string, record: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const script = `#!/bin/sh\nenv -0 > '${record}'\nexec '${process.execPath}' "$@"\n`;
  await writeFile(join(dir, 'node'), script, { mode: 0o755 });
}

async function recordedEnv(record: string): Promise<Record<string, string>> {
  const entries = (await readFile(record, 'utf8')).split('\0').filter((e) => e !== '');
  return Object.fromEntries(entries.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

/** The launcher's settings among what Node was given. */
const launchPart = (env: Record<string, string>) =>
  Object.fromEntries(NAMES.filter((n) => env[n] !== undefined).map((n) => [n, env[n]]));

/** The caller's environment without the launcher's variables, so that what Node sees came from it. */
function callerEnv(extra: Record<string, string> = {}, path = process.env['PATH'] ?? ''): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: path, ...extra };
  for (const n of NAMES) if (!(n in extra)) delete env[n];
  return env;
}

void describe("loft's launchers set the allocator's settings before Node starts", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loft-launch-env-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('LAUNCH_ENV holds the allocator settings measured for it', () => {
    assert.deepEqual(LAUNCH_ENV, { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '1048576' });
  });

  test("the npm bin (dist/cli/main.js run as a program): its shebang's env -S gives node exactly LAUNCH_ENV", async () => {
    assert.ok(isBuilt(), "run 'npm run build' first");
    const main = join(ROOT, 'dist', 'cli', 'main.js');
    const assignments = Object.entries(LAUNCH_ENV).map(([n, v]) => `${n}=${v}`);
    const shebang = (await readFile(main, 'utf8')).split('\n')[0];
    assert.equal(shebang, `#!/usr/bin/env -S ${assignments.join(' ')} node`);
    // env -S finds `node` on PATH, as npm's bin link does: the recording one first.
    const bin = join(dir, 'npm-bin');
    const record = join(dir, 'npm-bin.env');
    await recordingNode(bin, record);
    const { stdout } = await execFileAsync(main, ['--version'], {
      env: callerEnv({}, `${bin}:${process.env['PATH'] ?? ''}`),
    });
    assert.match(stdout, /\(Node v\d+/);
    assert.deepEqual(launchPart(await recordedEnv(record)), LAUNCH_ENV);
  });

  test('bin/loft gives node LAUNCH_ENV, and keeps a value the environment sets already', async () => {
    assert.ok(isBuilt(), "run 'npm run build' first");
    const co = join(dir, 'checkout');
    await mkdir(join(co, 'bin'), { recursive: true });
    await copyFile(join(ROOT, 'bin', 'loft'), join(co, 'bin', 'loft'));
    await symlink(join(ROOT, 'dist'), join(co, 'dist'));
    const record = join(dir, 'bin-loft.env');
    await recordingNode(join(co, 'node_modules', '.bin'), record);
    const launcher = join(co, 'bin', 'loft');

    const plain = await execFileAsync(launcher, ['--version'], { env: callerEnv() });
    assert.match(plain.stdout, /\(Node v\d+/);
    assert.deepEqual(launchPart(await recordedEnv(record)), LAUNCH_ENV);

    await execFileAsync(launcher, ['--version'], { env: callerEnv({ MALLOC_ARENA_MAX: '4' }) });
    assert.deepEqual(launchPart(await recordedEnv(record)), { ...LAUNCH_ENV, MALLOC_ARENA_MAX: '4' });
  });

  test('the Nix package wraps bin/loft with --set-default of nix/launch-env.nix, which is LAUNCH_ENV', async (t) => {
    const lib = nixpkgsLib(t);
    if (lib === undefined || !requireNix(t)) return;
    assert.deepEqual(await nixEval(`import ${nixPath('nix/launch-env.nix')}`), LAUNCH_ENV);
    // package.nix with stand-ins for what nixpkgs passes: buildNpmPackage returns its attributes,
    // so its postInstall can be read without building anything.
    const pkg = await nixEval<{ postInstall: string; nativeBuildInputs: string[] }>(
      `let lib = import ${JSON.stringify(lib)};
           p = import ${nixPath('nix/package.nix')} {
             inherit lib; stdenv = { hostPlatform.parsed = { kernel.name = "linux"; cpu.name = "x86_64"; };
                                     buildPlatform.system = "x86_64-linux"; shell = "/bin/sh"; };
             buildNpmPackage = a: a; importNpmLock = { npmConfigHook = "hook"; };
             runCommand = _: _: _: "npm-deps"; coreutils = "coreutils"; nodejs = "nodejs";
             makeWrapper = "makeWrapper"; };
       in { inherit (p) postInstall nativeBuildInputs; }`,
    );
    assert.deepEqual(pkg.nativeBuildInputs, ['makeWrapper']);
    const flags = Object.entries(LAUNCH_ENV)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      // Plain words: lib.escapeShellArg leaves them unquoted.
      .map(([n, v]) => (assert.match(v, /^[\w.]+$/), `--set-default ${n} ${v}`));
    assert.ok(pkg.postInstall.includes(`wrapProgram "$out/bin/loft" ${flags.join(' ')}\n`), pkg.postInstall);
  });
});
