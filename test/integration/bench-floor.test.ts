// bench/lib/sync-floor.ts, the program whose figures stand for "the least a Node.js program spends"
// in bench/floor.bench.ts, against the machine's real Nix: on one thread and on two, every path of
// the fixture closure (symlinks, executables, empty files, nested directories...) gets the NarHash
// and NarSize Nix recorded, and a zstd file that decompresses to that NAR. A floor that wrote less
// than a cache would make every ratio against it a lie.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { zstdDecompressSync } from 'node:zlib';
import { parseNarInfo } from '../../src/format/narinfo.js';
import type { PathInfo } from '../../src/format/path-info.js';
import { queryPathInfos } from '../../src/store/path-info-query.js';
import { buildFixtureClosure, deleteStorePaths, type FixtureCase } from '../helpers/fixtures.js';
import { hasNix, nixEnv, requireNix } from '../helpers/nix-env.js';

const FLOOR = fileURLToPath(new URL('../../bench/lib/sync-floor.ts', import.meta.url));
const run = promisify(execFile);

let work = '';
let paths: Record<FixtureCase, string> | undefined;
let closure: PathInfo[] = [];
let list = '';

before(async () => {
  if (!hasNix()) return;
  work = await mkdtemp(join(tmpdir(), 'loft-bench-floor-'));
  paths = await buildFixtureClosure({ largeFileMb: 3 });
  const results = await queryPathInfos(Object.values(paths), { recursive: true, env: nixEnv() });
  closure = results.map((r) => {
    assert.ok(r.ok, `path-info failed for ${r.ok ? '' : r.path}`);
    return r.info;
  });
  list = join(work, 'paths');
  await writeFile(list, closure.map((i) => i.path).join('\n') + '\n');
});

after(async () => {
  if (paths !== undefined) await deleteStorePaths(Object.values(paths));
  if (work !== '') await rm(work, { recursive: true, force: true });
});

/** Runs the floor on `threads` threads and checks everything it printed and wrote against Nix. */
async function checkFloor(threads: number): Promise<void> {
  const out = join(work, `out-${threads}`);
  const { stdout } = await run(process.execPath, [FLOOR, out, list, String(threads)]);
  const lines = stdout.split('\n').filter((l) => l !== '');
  // Exactly one line per path: two threads taking the same path would write it twice.
  assert.equal(lines.length, closure.length, 'one line per path');
  const printed = new Map(
    lines.map((l) => {
      const [path, hash, size] = l.split(' ');
      return [path!, { hash: hash!, size: Number(size) }];
    }),
  );
  assert.equal(printed.size, closure.length, 'every path');
  for (const info of closure) {
    const line = printed.get(info.path);
    assert.ok(line, `${info.path} was not written`);
    assert.equal(line.hash, info.narHash.digest.toString('hex'), `NarHash of ${info.path}`);
    assert.equal(line.size, info.narSize, `NarSize of ${info.path}`);
    const hashPart = info.path.slice('/nix/store/'.length, '/nix/store/'.length + 32);
    const narinfo = parseNarInfo(await readFile(join(out, `${hashPart}.narinfo`), 'utf8'));
    const file = await readFile(join(out, narinfo.url));
    assert.equal(file.length, narinfo.fileSize, `FileSize of ${info.path}`);
    const nar = zstdDecompressSync(file);
    assert.equal(
      createHash('sha256').update(nar).digest('hex'),
      line.hash,
      `${narinfo.url} decodes to the NAR`,
    );
  }
  // Nothing left half-written: each thread's temporary file was renamed into place.
  const left = (await readdir(join(out, 'nar'))).filter((n) => n.startsWith('.partial'));
  assert.deepEqual(left, []);
}

test('the floor on one thread writes the NAR, hashes and zstd file Nix has for every path', async (t) => {
  if (!requireNix(t)) return;
  await checkFloor(1);
});

test('the floor on two threads writes every path once, each as Nix has it', async (t) => {
  if (!requireNix(t)) return;
  await checkFloor(2);
});

test('the floor refuses a thread count that is not a whole number above 0', async (t) => {
  if (!requireNix(t)) return;
  await assert.rejects(
    run(process.execPath, [FLOOR, join(work, 'bad'), list, '0']),
    (err: { code?: number }) => {
      assert.equal(err.code, 2);
      return true;
    },
  );
});
