// runNix and queryPathInfos against the machine's Nix, with valid, invalid, outside-the-store and
// mixed arguments (see the observations at the top of src/store/path-info-query.ts).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runNix } from '../../src/store/nix-cli.js';
import { queryPathInfos } from '../../src/store/path-info-query.js';
import type { PathInfoResult } from '../../src/format/path-info.js';
import { InvalidPathError, NixError } from '../../src/errors.js';
import { hasNix, nixEnv, requireNix } from '../helpers/nix-env.js';
import { buildFixtureClosure, deleteStorePaths, type FixtureCase } from '../helpers/fixtures.js';

const ABSENT = '/nix/store/00000000000000000000000000000000-loft-absent';
let paths: Record<FixtureCase, string>;
let work = '';

before(async () => {
  if (!hasNix()) return;
  work = await mkdtemp(join(tmpdir(), 'loft-nix-cli-'));
  paths = await buildFixtureClosure({ largeFileMb: 0 });
});

after(async () => {
  if (paths !== undefined) await deleteStorePaths(Object.values(paths));
  if (work !== '') await rm(work, { recursive: true, force: true });
});

function byPath(results: PathInfoResult[]): Map<string, PathInfoResult> {
  return new Map(results.map((r) => [r.ok ? r.info.path : r.path, r]));
}

describe('runNix', () => {
  test('runs a nix-command subcommand without any nix.conf feature setting', async (t) => {
    if (!requireNix(t)) return;
    // process.env, not nixEnv(): the feature flag comes from runNix itself.
    const { stdout } = await runNix(['path-info', '--json'], { operands: [paths.leaf] });
    assert.equal((JSON.parse(stdout) as Array<{ path: string }>)[0]!.path, paths.leaf);
  });
  test('runs other Nix programs, paths after --', async (t) => {
    if (!requireNix(t)) return;
    const { stdout } = await runNix(['--query', '--hash'], {
      program: 'nix-store',
      operands: [paths.leaf],
      env: nixEnv(),
    });
    assert.match(stdout.trim(), /^sha256:[0-9a-z]{52}$/);
  });
  test("a failure is a one-line NixError with Nix's last stderr line", async (t) => {
    if (!requireNix(t)) return;
    const err = await runNix(['path-info', '--recursive'], { operands: [ABSENT], env: nixEnv() }).catch(
      (e: unknown) => e,
    );
    assert.ok(err instanceof NixError);
    assert.ok(!err.message.includes('\n'));
    assert.match(err.message, /exited with status 1: error: path '.*loft-absent' is not valid/);
  });
  test('a missing program is a NixError saying so', async () => {
    const err = await runNix(['--version'], { program: 'loft-no-such-nix' }).catch((e: unknown) => e);
    assert.ok(err instanceof NixError);
    assert.match(err.message, /loft-no-such-nix not found on PATH/);
  });
});

describe('queryPathInfos', () => {
  const env = (): NodeJS.ProcessEnv => nixEnv();
  test('valid paths, without and with their closure', async (t) => {
    if (!requireNix(t)) return;
    const plain = await queryPathInfos([paths.top], { recursive: false, env: env() });
    assert.deepEqual(
      plain.map((r) => r.ok && r.info.path),
      [paths.top],
    );
    const rec = byPath(await queryPathInfos([paths.top], { recursive: true, env: env() }));
    assert.deepEqual([...rec.keys()].sort(), [paths.leaf, paths.mid, paths.top].sort());
    const leaf = rec.get(paths.leaf)!;
    assert.ok(leaf.ok && leaf.info.references.length === 0 && leaf.info.narSize > 0);
  });
  test('a well-formed path that is not in the store is a per-path error', async (t) => {
    if (!requireNix(t)) return;
    for (const recursive of [false, true]) {
      const [r, ...rest] = await queryPathInfos([ABSENT], { recursive, env: env() });
      assert.equal(rest.length, 0);
      assert.ok(r && !r.ok && r.path === ABSENT && r.error instanceof InvalidPathError);
    }
  });
  test('paths outside the store, inside a store path or malformed never reach Nix', async (t) => {
    if (!requireNix(t)) return;
    const bad = [join(work, 'x'), `${paths.tree}/regular.txt`, '/nix/store/abc', ''];
    const results = await queryPathInfos(bad, { recursive: true, env: env() });
    assert.deepEqual(
      results.map((r) => (r.ok ? 'ok' : r.path)),
      bad,
    );
    for (const r of results) assert.ok(!r.ok && r.error instanceof InvalidPathError);
  });
  test('mixed valid, invalid and outside paths: each gets its own answer', async (t) => {
    if (!requireNix(t)) return;
    for (const recursive of [false, true]) {
      const input = [
        paths.mid,
        ABSENT,
        '/etc/hostname',
        paths.symlinkOut,
        '/nix/store/11111111111111111111111111111111-loft-absent2',
      ];
      const got = byPath(await queryPathInfos(input, { recursive, env: env() }));
      const ok = [...got.values()]
        .filter((r) => r.ok)
        .map((r) => r.ok && r.info.path)
        .sort();
      const expected = recursive ? [paths.leaf, paths.mid, paths.symlinkOut] : [paths.mid, paths.symlinkOut];
      assert.deepEqual(ok, expected.sort(), `recursive=${recursive}`);
      for (const p of [ABSENT, '/etc/hostname', '/nix/store/11111111111111111111111111111111-loft-absent2']) {
        assert.equal(got.get(p)?.ok, false, p);
      }
    }
  });
  test('many paths at once, duplicates answered once', async (t) => {
    if (!requireNix(t)) return;
    const all = Object.values(paths);
    const results = await queryPathInfos([...all, ...all], { recursive: false, env: env() });
    assert.equal(results.length, new Set(all).size);
    assert.ok(results.every((r) => r.ok));
  });
});
