import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveStorePath, topLevelStorePath } from '../../../src/store/resolve-path.js';
import { InvalidPathError } from '../../../src/errors.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

test('a file inside a store path resolves to the top-level path', () => {
  const h = '0'.repeat(32);
  assert.equal(topLevelStorePath(`/nix/store/${h}-x/bin/y`, '/nix/store'), `/nix/store/${h}-x`);
  assert.equal(topLevelStorePath('/nix/storefoo/x', '/nix/store'), undefined);
});

test('follows a symlink into the store (./result), with the store dir given', async () => {
  const root = await mkdtemp(join(tmpdir(), 'loft-resolve-'));
  dirs.push(root);
  const store = join(root, 'store');
  const target = join(store, `${'1'.repeat(32)}-hello`);
  await mkdir(target, { recursive: true });
  await symlink(target, join(root, 'result'));
  assert.equal(await resolveStorePath(join(root, 'result'), store), target);
});

test('refuses paths outside the store and paths that do not exist, naming them', async () => {
  await assert.rejects(resolveStorePath('/etc', '/nix/store'), (e: unknown) => {
    assert.ok(e instanceof InvalidPathError);
    assert.match(e.message, /\/etc is not in the Nix store/);
    return true;
  });
  await assert.rejects(resolveStorePath('/does/not/exist', '/nix/store'), /does not exist/);
  await assert.rejects(resolveStorePath('/nix/store/not-a-hash', '/nix/store'), InvalidPathError);
});
