// The closure read from the local Nix database must be exactly what `nix path-info --json
// --recursive` gives, field for field, on real paths with references, a self-reference, derivers,
// content addresses and signatures; and it must decline (undefined, so Nix is asked) whenever it
// cannot answer for every requested path.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PathInfoResult } from '../../src/format/path-info.js';
import { closureFromNixDb } from '../../src/store/nix-db.js';
import { queryPathInfos } from '../../src/store/path-info-query.js';
import { buildFixtureClosure, deleteStorePaths, type FixtureCase } from '../helpers/fixtures.js';
import { hasNix, nixBin, nixEnv, requireNix } from '../helpers/nix-env.js';
import { makeNixKey } from '../helpers/signing-keys.js';

const ABSENT = '/nix/store/00000000000000000000000000000000-loft-absent';
let paths: Record<FixtureCase, string>;
let work = '';

before(async () => {
  if (!hasNix()) return;
  work = await mkdtemp(join(tmpdir(), 'loft-nix-db-'));
  paths = await buildFixtureClosure({ largeFileMb: 0 });
  // Two signatures on one path: the database keeps them space-separated.
  for (const name of ['db-test-1', 'db-test-2']) {
    const key = await makeNixKey(work, name);
    await nixBin(['nix', 'store', 'sign', '--key-file', key.secretPath, '--', paths.mid]);
  }
});

after(async () => {
  if (paths !== undefined) await deleteStorePaths(Object.values(paths));
  if (work !== '') await rm(work, { recursive: true, force: true });
});

function sorted(results: PathInfoResult[]): PathInfoResult[] {
  const key = (r: PathInfoResult) => (r.ok ? r.info.path : r.path);
  return [...results].sort((a, b) => (key(a) < key(b) ? -1 : 1));
}

describe('closureFromNixDb', () => {
  test('equals nix path-info --json --recursive on a real closure', async (t) => {
    if (!requireNix(t)) return;
    const roots = [paths.top, paths.tree, paths.caUser, paths.symlinkOut];
    const fromDb = closureFromNixDb(roots, { env: nixEnv() });
    assert.ok(fromDb !== undefined, 'the database of this single-user Nix is readable');
    const fromNix = await queryPathInfos(roots, { recursive: true, env: nixEnv() });
    assert.deepEqual(sorted(fromDb), sorted(fromNix));
    // The cases this test is about are really there.
    const byPath = new Map(fromDb.flatMap((r) => (r.ok ? [[r.info.path, r.info]] : [])));
    assert.equal(byPath.get(paths.mid)?.signatures.length, 2);
    assert.ok(byPath.get(paths.top)?.references.includes(paths.top), 'self-reference');
    assert.match(byPath.get(paths.contentAddressed)?.ca ?? '', /^text:sha256:/);
    assert.match(byPath.get(paths.leaf)?.deriver ?? '', /\.drv$/);
  });

  test('declines when a requested path is not valid, so Nix names it', (t) => {
    if (!requireNix(t)) return;
    assert.equal(closureFromNixDb([paths.leaf, ABSENT], { env: nixEnv() }), undefined);
    assert.equal(closureFromNixDb([`${paths.leaf}/nothing`], { env: nixEnv() }), undefined);
  });

  test('declines when the environment selects another store or another store directory', (t) => {
    if (!requireNix(t)) return;
    const env = nixEnv();
    assert.equal(
      closureFromNixDb([paths.leaf], { env: { ...env, NIX_REMOTE: 'ssh://elsewhere' } }),
      undefined,
    );
    assert.equal(
      closureFromNixDb([paths.leaf], { env: { ...env, NIX_STORE_DIR: '/other/store' } }),
      undefined,
    );
    assert.ok(closureFromNixDb([paths.leaf], { env: { ...env, NIX_REMOTE: 'daemon' } }) !== undefined);
  });

  test('declines a database of an unknown schema or none at all', async (t) => {
    if (!requireNix(t)) return;
    const state = join(work, 'state');
    await mkdir(join(state, 'db'), { recursive: true });
    const env = { ...nixEnv(), NIX_STATE_DIR: state };
    assert.equal(closureFromNixDb([paths.leaf], { env }), undefined, 'no database');
    await writeFile(join(state, 'db', 'schema'), '11');
    assert.equal(closureFromNixDb([paths.leaf], { env }), undefined, 'unknown schema');
  });
});
