// The other compressions and the local-directory store, each proven by real Nix substituting what
// loft wrote: xz and none over HTTP from s3rver, zstd from a directory over file://, and the
// embedded default (no config file at all) that the README's first command uses.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFixtureClosure, deleteStorePaths, type FixtureCase } from '../helpers/fixtures.js';
import { runLoft } from '../helpers/loft-cli.js';
import { hasNix, requireNix } from '../helpers/nix-env.js';
import { startS3Server } from '../helpers/s3-server.js';
import { makeNixKey, type KeyFiles } from '../helpers/signing-keys.js';
import {
  bucketNarInfo,
  closureOf,
  deleteLocally,
  hashPartOfPath,
  httpCacheUrl,
  substitute,
  verifyClosure,
  writeConfig,
} from '../helpers/upload-env.js';

describe('other compressions and the local directory store', () => {
  let dir: string;
  let key: KeyFiles;
  const built: string[] = [];

  before(async () => {
    if (!hasNix()) return;
    dir = await mkdtemp(join(tmpdir(), 'loft-codecs-'));
    key = await makeNixKey(dir, 'loft-codec-test-1');
  });
  after(async () => {
    if (!hasNix()) return;
    await deleteStorePaths(built);
    await rm(dir, { recursive: true, force: true });
  });

  async function fixtures(): Promise<Record<FixtureCase, string>> {
    const f = await buildFixtureClosure({ largeFileMb: 1 });
    built.push(...Object.values(f));
    return f;
  }

  for (const compression of ['xz', 'none'] as const) {
    test(`${compression}: small paths uploaded to S3 are substituted by Nix`, async (t) => {
      if (!requireNix(t)) return;
      const f = await fixtures();
      const s3 = await startS3Server();
      t.after(() => s3.close());
      const sub = await mkdtemp(join(dir, `${compression}-`));
      const config = await writeConfig({ dir: sub, s3, compression, signingKeyPath: key.secretPath });
      const roots = [f.top, f.tree];
      const closure = await closureOf(roots);
      const run = await runLoft(['-c', config, '--upload-path', ...roots]);
      assert.equal(run.code, 0, run.stderr);
      for (const p of closure) {
        const ni = await bucketNarInfo(s3, hashPartOfPath(p));
        assert.equal(ni?.compression, compression);
        assert.ok(ni.url.endsWith(compression === 'xz' ? '.nar.xz' : '.nar'), ni.url);
      }
      await deleteLocally(closure, Object.values(f));
      await substitute(roots, httpCacheUrl(s3), key.publicKey);
      await verifyClosure(roots, key.publicKey);
    });
  }

  test('[local] path: a directory cache Nix reads as file://, signed', async (t) => {
    if (!requireNix(t)) return;
    const f = await fixtures();
    const sub = await mkdtemp(join(dir, 'local-'));
    const cacheDir = join(sub, 'cache');
    const config = await writeConfig({ dir: sub, localPath: cacheDir, signingKeyPath: key.secretPath });
    const roots = [f.top, f.symlinkOut, f.large];
    const closure = await closureOf(roots);
    const run = await runLoft(['-c', config, '--upload-path', ...roots]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(await readFile(join(cacheDir, 'nix-cache-info'), 'utf8'), /StoreDir: \/nix\/store/);
    const narinfos = (await readdir(cacheDir)).filter((n) => n.endsWith('.narinfo'));
    assert.equal(narinfos.length, closure.length);
    assert.deepEqual(await readdir(join(cacheDir, '.loft-tmp')).catch(() => []), [], 'no temp file left');
    await deleteLocally(closure, Object.values(f));
    await substitute(roots, `file://${cacheDir}`, key.publicKey);
    await verifyClosure(roots, key.publicKey);
  });

  test('no config file: the embedded default writes ./loft-cache, readable by Nix', async (t) => {
    if (!requireNix(t)) return;
    const f = await fixtures();
    const cwd = await mkdtemp(join(dir, 'default-'));
    const env = { XDG_STATE_HOME: join(cwd, 'state') };
    const run = await runLoft(['--upload-path', f.mid], { cwd, env });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /UNSIGNED cache/);
    assert.ok(existsSync(join(cwd, 'loft-cache', `${hashPartOfPath(f.mid)}.narinfo`)));
    const dbs = (await readdir(join(cwd, 'state', 'loft'))).filter((n) => /^cache-[0-9a-f]+\.db$/.test(n));
    assert.equal(dbs.length, 1, 'one presence cache, keyed by its target, under XDG_STATE_HOME');
    const closure = await closureOf([f.mid]);
    await deleteLocally(closure, Object.values(f));
    await substitute([f.mid], `file://${join(cwd, 'loft-cache')}`);
    assert.ok(existsSync(f.mid));
  });
});
