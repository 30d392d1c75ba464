// What a host publishes as its roots, resolved in a private directory that stands in for the
// store: symlinks into it, a directory of such symlinks, and entries that do not count.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveHostRoots } from '../../../src/store/host-roots.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

test('symlinks, store paths and directories of symlinks resolve to hash parts; the rest is skipped', async () => {
  const root = await mkdtemp(join(tmpdir(), 'loft-roots-'));
  dirs.push(root);
  const store = join(root, 'store');
  const a = `${'a'.repeat(32)}-system`;
  const b = `${'b'.repeat(32)}-profile`;
  const c = `${'c'.repeat(32)}-gcroot`;
  await mkdir(join(store, a, 'sw'), { recursive: true });
  await writeFile(join(store, b), 'x');
  await writeFile(join(store, c), 'x');
  await symlink(join(store, a), join(root, 'current-system'));
  await mkdir(join(root, 'gcroots'));
  await symlink(join(store, c), join(root, 'gcroots', 'result'));
  await symlink('/etc', join(root, 'gcroots', 'not-in-store'));
  const roots = await resolveHostRoots(
    [
      join(root, 'current-system'), // a symlink to a store directory: the directory itself
      join(store, b), // a store path
      join(store, a, 'sw'), // inside a store path: its store path
      join(root, 'gcroots'), // a directory of symlinks, one level
      join(root, 'missing'),
    ],
    store,
  );
  assert.deepEqual(roots, ['a'.repeat(32), 'b'.repeat(32), 'c'.repeat(32)]);
});
