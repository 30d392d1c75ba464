// The [local] directory store on a real file system that fills up or turns read-only: a tmpfs
// mounted for the test (the suite runs as root, as CI does). The upload must fail with one clear
// line and exit 4, never show a half-written file under its final name, leave no temporary file
// behind, and complete once space is back; real Nix then substitutes the closure from the directory.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseNarInfo } from '../../src/format/narinfo.js';
import { LOCAL_TEMP_DIR } from '../../src/storage/local-object-store.js';
import { buildFixtureClosure, deleteStorePaths, type FixtureCase } from '../helpers/fixtures.js';
import { runLoft, type LoftRun } from '../helpers/loft-cli.js';
import { hasNix, requireNix } from '../helpers/nix-env.js';
import { makeNixKey, type KeyFiles } from '../helpers/signing-keys.js';
import { closureOf, deleteLocally, hashPartOfPath, substitute, writeConfig } from '../helpers/upload-env.js';

const run = promisify(execFile);

async function mount(args: string[]): Promise<void> {
  await run('mount', args);
}

/** Every object a reader could see: narinfos must parse and name a NAR of exactly FileSize bytes. */
async function checkDirectory(root: string): Promise<{ narinfos: string[]; problems: string[] }> {
  const problems: string[] = [];
  const names = await readdir(root);
  const narinfos = names.filter((n) => n.endsWith('.narinfo'));
  for (const name of narinfos) {
    try {
      const info = parseNarInfo(await readFile(join(root, name), 'utf8'));
      const size = (await stat(join(root, info.url))).size;
      if (size !== info.fileSize) problems.push(`${name}: NAR has ${size} bytes, FileSize ${info.fileSize}`);
    } catch (err) {
      problems.push(`${name}: ${(err as Error).message}`);
    }
  }
  const temps = await readdir(join(root, LOCAL_TEMP_DIR)).catch(() => []);
  if (temps.length > 0) problems.push(`temporary files left: ${temps.join(' ')}`);
  return { narinfos, problems };
}

function errorLines(r: LoftRun): string[] {
  return r.stderr.split('\n').filter((l) => l.startsWith('loft: '));
}

describe('the local directory store on a full or read-only file system', () => {
  let dir: string;
  let mnt: string;
  let mounted = false;
  let key: KeyFiles;
  let config: string;
  let fixtures: Record<FixtureCase, string>;

  before(async () => {
    if (!hasNix()) return;
    dir = await mkdtemp(join(tmpdir(), 'loft-local-faults-'));
    mnt = join(dir, 'cache');
    await mkdir(mnt);
    // 6 MiB: room for the small paths, not for the 8 MiB random file (stored uncompressed).
    await mount(['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', mnt]);
    mounted = true;
    key = await makeNixKey(dir, 'loft-local-faults-1');
    config = await writeConfig({ dir, localPath: mnt, compression: 'none', signingKeyPath: key.secretPath });
    fixtures = await buildFixtureClosure({ largeFileMb: 8 });
  });
  after(async () => {
    if (!hasNix()) return;
    if (mounted) await run('umount', [mnt]).catch(() => undefined);
    if (fixtures) await deleteStorePaths(Object.values(fixtures));
    await rm(dir, { recursive: true, force: true });
  });

  test('a full disk: exit 4 naming ENOSPC, nothing half-written; with space back the rerun completes', async (t) => {
    if (!requireNix(t)) return;
    const roots = [fixtures.top, fixtures.large];
    const full = await runLoft(['-c', config, '--upload-path', ...roots]);
    assert.equal(full.code, 4, full.stderr);
    const lines = errorLines(full);
    assert.ok(lines.length >= 1 && lines.every((l) => /ENOSPC/.test(l) && /full/.test(l)), full.stderr);
    assert.ok(!/\n\s+at .+:\d+:\d+/.test(full.stderr), 'no stack trace');
    const afterFull = await checkDirectory(mnt);
    assert.deepEqual(afterFull.problems, []);
    assert.ok(
      !afterFull.narinfos.includes(`${hashPartOfPath(fixtures.large)}.narinfo`),
      'the path that did not fit is not published',
    );

    await mount(['-o', 'remount,size=64m', mnt]);
    const again = await runLoft(['-c', config, '--upload-path', ...roots]);
    assert.equal(again.code, 0, again.stderr);
    const closure = await closureOf(roots);
    const done = await checkDirectory(mnt);
    assert.deepEqual(done.problems, []);
    assert.equal(done.narinfos.length, closure.length);

    await deleteLocally(closure, Object.values(fixtures));
    await substitute(roots, `file://${mnt}`, key.publicKey);
    for (const p of roots) assert.ok((await stat(p)).isDirectory() || (await stat(p)).isFile());
  });

  test('a read-only file system: exit 4 naming EROFS, nothing changed', async (t) => {
    if (!requireNix(t)) return;
    const extra = await buildFixtureClosure({ largeFileMb: 0 });
    t.after(() => deleteStorePaths(Object.values(extra)));
    const before = await readdir(mnt);
    await mount(['-o', 'remount,ro', mnt]);
    t.after(() => mount(['-o', 'remount,rw', mnt]));
    const ro = await runLoft(['-c', config, '--upload-path', extra.top]);
    assert.equal(ro.code, 4, ro.stderr);
    const lines = errorLines(ro);
    assert.ok(lines.length >= 1 && lines.every((l) => /EROFS/.test(l) && /read-only/.test(l)), ro.stderr);
    assert.deepEqual(await readdir(mnt), before);
  });
});
