// Middle-sized NARs made whole on worker threads (src/upload/nar-workers.ts), through the built
// CLI: the fixture closure uploaded with the workers and without them (LOFT_NAR_WORKERS=0) gives
// the same files, byte for byte, and Nix substitutes the workers' cache with our signature
// required. The fixture's `large` path (one 3 MiB file) is the one the workers take.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildFixtureClosure,
  deleteStorePaths,
  FIXTURE_CASES,
  type FixtureCase,
} from '../helpers/fixtures.js';
import { runLoft } from '../helpers/loft-cli.js';
import { hasNix, requireNix } from '../helpers/nix-env.js';
import { makeNixKey, type KeyFiles } from '../helpers/signing-keys.js';
import {
  closureOf,
  deleteLocally,
  hashPartOfPath,
  substitute,
  verifyClosure,
  writeConfig,
} from '../helpers/upload-env.js';

/** Each narinfo of a cache directory by file name, with its FileHash and NarSize. */
async function narinfos(cache: string): Promise<Map<string, { fileHash: string; narSize: number }>> {
  const out = new Map<string, { fileHash: string; narSize: number }>();
  for (const name of await readdir(cache)) {
    if (!name.endsWith('.narinfo')) continue;
    const text = await readFile(join(cache, name), 'utf8');
    out.set(name, {
      fileHash: /^FileHash: (\S+)$/m.exec(text)![1]!,
      narSize: Number(/^NarSize: (\d+)$/m.exec(text)![1]),
    });
  }
  return out;
}

describe('NARs made on worker threads', () => {
  let dir: string;
  let key: KeyFiles;
  let paths: Record<FixtureCase, string>;
  const roots = () => FIXTURE_CASES.map((n) => paths[n]);

  before(async () => {
    if (!hasNix()) return;
    dir = await mkdtemp(join(tmpdir(), 'loft-workers-'));
    key = await makeNixKey(dir, 'loft-test-1');
    paths = await buildFixtureClosure({ largeFileMb: 3 });
  });
  after(async () => {
    if (!hasNix()) return;
    if (paths !== undefined) await deleteStorePaths(Object.values(paths));
    await rm(dir, { recursive: true, force: true });
  });

  async function upload(name: string, env: Record<string, string>): Promise<{ cache: string; log: string }> {
    const home = join(dir, name);
    await mkdir(home);
    const cache = join(home, 'cache');
    const config = await writeConfig({ dir: home, localPath: cache, signingKeyPath: key.secretPath });
    const run = await runLoft(['-c', config, '--debug', '--upload-path', ...roots()], { env });
    assert.equal(run.code, 0, run.stderr);
    return { cache, log: run.stdout + run.stderr };
  }

  test('the same files as the streaming path, and Nix substitutes them with our signature', async (t) => {
    if (!requireNix(t)) return;
    const workers = await upload('workers', {});
    const streaming = await upload('streaming', { LOFT_NAR_WORKERS: '0' });

    const large = hashPartOfPath(paths.large);
    const made = workers.log.split('\n').filter((l) => l.includes('NAR made on a worker thread'));
    assert.ok(
      made.some((l) => l.includes(large)),
      `the 3 MiB path went to a worker:\n${made.join('\n')}`,
    );
    assert.ok(!streaming.log.includes('NAR made on a worker thread'), 'LOFT_NAR_WORKERS=0 keeps them off');

    const a = await narinfos(workers.cache);
    const b = await narinfos(streaming.cache);
    assert.ok(a.size >= FIXTURE_CASES.length);
    assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
    for (const [name, info] of a) assert.equal(info.fileHash, b.get(name)!.fileHash, name);
    assert.ok(a.get(`${large}.narinfo`)!.narSize > 3 * 1024 * 1024);

    const closure = await closureOf(roots());
    await deleteLocally(closure);
    await substitute(roots(), `file://${workers.cache}`, key.publicKey);
    await verifyClosure(roots(), key.publicKey);
  });

  test('a LOFT_NAR_WORKERS that is not a count is refused in one line, exit code 3 (configuration)', async (t) => {
    if (!requireNix(t)) return;
    const config = await writeConfig({
      dir,
      localPath: join(dir, 'refused'),
      signingKeyPath: key.secretPath,
    });
    const run = await runLoft(['-c', config, '--upload-path', paths.large], {
      env: { LOFT_NAR_WORKERS: 'two' },
    });
    assert.equal(run.code, 3, run.stderr);
    assert.equal(
      run.stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('loft:')).length,
      1,
      run.stderr,
    );
    assert.match(run.stderr, /LOFT_NAR_WORKERS=two is not a whole number from 0 to 256/);
  });
});
