// loft's NAR, NarHash, NarSize and signatures against the machine's real Nix, for every path of the
// fixture closure (test/fixtures/closure.nix) built fresh for this run.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { zstdDecompressSync } from 'node:zlib';
import { dumpNar } from '../../src/store/dump-nar.js';
import { NarWorkers } from '../../src/upload/nar-workers.js';
import { queryPathInfos } from '../../src/store/path-info-query.js';
import { fingerprintPath } from '../../src/format/fingerprint.js';
import { parseSecretKey, signFingerprint } from '../../src/format/signing-key.js';
import { formatHashNix32, hashEquals, parseHash, sha256Hash, type Hash } from '../../src/format/hash.js';
import { renderNarInfo } from '../../src/format/narinfo.js';
import { storePathBaseName } from '../../src/format/store-path.js';
import type { PathInfo } from '../../src/format/path-info.js';
import { hasNix, nixBin, nixBinBuffer, nixEnv, requireNix } from '../helpers/nix-env.js';
import {
  buildFixtureClosure,
  deleteStorePaths,
  FIXTURE_CASES,
  type FixtureCase,
} from '../helpers/fixtures.js';

interface Digest {
  hash: Hash;
  size: number;
}

async function digest(stream: Readable): Promise<Digest> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { hash: sha256Hash(h.digest()), size };
}

/** `nix-store --dump P` streamed (never held in memory whole), hashed as it arrives. */
async function nixDumpDigest(path: string): Promise<Digest> {
  const child = spawn('nix-store', ['--dump', '--', path], {
    env: nixEnv(),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const d = await digest(child.stdout);
  assert.equal(await exited, 0, `nix-store --dump ${path} failed`);
  return d;
}

async function ourBytes(path: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of dumpNar(path)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

let work = '';
let paths: Record<FixtureCase, string>;
let closure: PathInfo[] = [];
const ours = new Map<string, Digest>();

before(async () => {
  if (!hasNix()) return;
  work = await mkdtemp(join(tmpdir(), 'loft-nar-vs-nix-'));
  paths = await buildFixtureClosure({ largeFileMb: 3 });
  const results = await queryPathInfos(Object.values(paths), { recursive: true, env: nixEnv() });
  closure = results.map((r) => {
    assert.ok(r.ok, `path-info failed for ${r.ok ? '' : r.path}`);
    return r.info;
  });
  for (const info of closure) ours.set(info.path, await digest(dumpNar(info.path)));
});

after(async () => {
  if (paths !== undefined) await deleteStorePaths(Object.values(paths));
  if (work !== '') await rm(work, { recursive: true, force: true });
});

describe('our NAR equals nix-store --dump', () => {
  for (const name of FIXTURE_CASES) {
    test(name, async (t) => {
      if (!requireNix(t)) return;
      const path = paths[name];
      const theirs = await nixDumpDigest(path);
      const mine = ours.get(path)!;
      assert.equal(mine.size, theirs.size);
      assert.ok(hashEquals(mine.hash, theirs.hash), `NAR sha256 differs for ${path}`);
      if (theirs.size < 1024 * 1024) {
        assert.ok((await ourBytes(path)).equals(await nixBinBuffer(['nix-store', '--dump', '--', path])));
      }
    });
  }
  test('the closure holds every case plus the references Nix records', (t) => {
    if (!requireNix(t)) return;
    const set = new Set(closure.map((i) => i.path));
    for (const name of FIXTURE_CASES) assert.ok(set.has(paths[name]), name);
    const top = closure.find((i) => i.path === paths.top)!;
    assert.deepEqual(top.references, [paths.mid, paths.top].sort());
    assert.ok(closure.find((i) => i.path === paths.contentAddressed)!.ca?.startsWith('text:sha256:'));
  });
});

describe('NARs made whole on a worker thread (src/upload/nar-workers.ts)', () => {
  test("hash to Nix's NarHash, and their zstd file decompresses to the same NAR, for every path", async (t) => {
    if (!requireNix(t)) return;
    // A bound above every fixture path, so the odd trees (names, links, empty files) all go through.
    const workers = new NarWorkers(2, 64 * 1024 * 1024);
    try {
      for (const info of closure) {
        const made = await workers.run(info.path, info.narSize, 'zstd', 3);
        assert.ok(made, info.path);
        assert.ok(hashEquals(sha256Hash(made.narHash), info.narHash), info.path);
        const nar = zstdDecompressSync(made.file);
        assert.equal(nar.length, info.narSize, info.path);
        assert.ok(hashEquals(sha256Hash(createHash('sha256').update(nar).digest()), info.narHash), info.path);
        assert.ok(made.fileHash.equals(createHash('sha256').update(made.file).digest()), info.path);
      }
    } finally {
      workers.close();
    }
  });
});

describe('NarHash and NarSize', () => {
  test('equal what nix path-info reports for every path of the closure', (t) => {
    if (!requireNix(t)) return;
    assert.ok(closure.length >= FIXTURE_CASES.length);
    for (const info of closure) {
      const mine = ours.get(info.path)!;
      assert.equal(mine.size, info.narSize, info.path);
      assert.equal(formatHashNix32(mine.hash), formatHashNix32(info.narHash), info.path);
    }
  });
});

describe('signatures', () => {
  let secret = '';
  let publicKey = '';
  before(async () => {
    if (!hasNix()) return;
    secret = (await nixBin(['nix', 'key', 'generate-secret', '--key-name', 'loft-test-1'])).stdout;
    await writeFile(join(work, 'secret'), secret, { mode: 0o600 });
    publicKey = execWithInput(['nix', 'key', 'convert-secret-to-public'], secret);
  });

  const ourSignature = (info: PathInfo): string => {
    const mine = ours.get(info.path)!;
    return signFingerprint(
      parseSecretKey(secret),
      fingerprintPath(info.path, mine.hash, mine.size, info.references),
    );
  };

  test('ours equals the one nix store sign records for the same path and key', async (t) => {
    if (!requireNix(t)) return;
    const all = closure.map((i) => i.path);
    await nixBin(['nix', 'store', 'sign', '--key-file', join(work, 'secret'), '--', ...all]);
    const signed = await queryPathInfos(all, { recursive: false, env: nixEnv() });
    for (const r of signed) {
      assert.ok(r.ok);
      const nixSigs = r.info.signatures.filter((s) => s.startsWith('loft-test-1:'));
      assert.deepEqual(nixSigs, [ourSignature(r.info)], r.info.path);
    }
  });

  // Nix checks a signature where it reads the narinfo: `nix store verify --store file://DIR` reads
  // our narinfo (with only our Sig), fetches our NAR, rehashes it against NarHash and checks the Sig
  // against --trusted-public-keys. This is what a substituting Nix does with a loft cache.
  async function writeCache(dir: string, sign: (info: PathInfo) => string): Promise<void> {
    await mkdir(join(dir, 'nar'), { recursive: true });
    await writeFile(join(dir, 'nix-cache-info'), 'StoreDir: /nix/store\n');
    for (const info of closure) {
      const mine = ours.get(info.path)!;
      const url = `nar/${formatHashNix32(mine.hash).slice('sha256:'.length)}.nar`;
      await pipeline(dumpNar(info.path), createWriteStream(join(dir, url)));
      const text = renderNarInfo({
        storePath: info.path,
        url,
        compression: 'none',
        fileHash: mine.hash,
        fileSize: mine.size,
        narHash: mine.hash,
        narSize: mine.size,
        references: info.references.map((r) => storePathBaseName(r)),
        ...(info.ca !== undefined ? { ca: info.ca } : {}),
        signatures: [sign(info)],
        extra: [],
      });
      await writeFile(join(dir, `${storePathBaseName(info.path).slice(0, 32)}.narinfo`), text);
    }
  }
  const verify = (dir: string): Promise<unknown> =>
    nixBin([
      'nix',
      'store',
      'verify',
      '--store',
      `file://${dir}`,
      '--sigs-needed',
      '1',
      '--trusted-public-keys',
      publicKey,
      '--recursive',
      '--',
      ...FIXTURE_CASES.map((n) => paths[n]),
    ]);

  test('nix store verify accepts a file:// cache signed by us', async (t) => {
    if (!requireNix(t)) return;
    const dir = join(work, 'cache-ours');
    await writeCache(dir, ourSignature);
    await verify(dir);
  });

  test('and rejects the same cache signed over a wrong fingerprint (the check is real)', async (t) => {
    if (!requireNix(t)) return;
    const dir = join(work, 'cache-bad');
    const sk = parseSecretKey(secret);
    await writeCache(dir, (info) =>
      signFingerprint(
        sk,
        fingerprintPath(info.path, ours.get(info.path)!.hash, ours.get(info.path)!.size + 1, info.references),
      ),
    );
    // Exit status 2 and "is untrusted": Nix read the narinfo and refused the signature.
    await assert.rejects(
      verify(dir),
      (e: { code?: unknown; stderr?: unknown }) => e.code === 2 && /is untrusted/.test(String(e.stderr)),
    );
  });
});

describe('a 100 MiB file', () => {
  let big: Record<FixtureCase, string> | undefined;
  after(async () => {
    if (big !== undefined) await deleteStorePaths(Object.values(big));
  });
  test('NAR, NarHash and NarSize equal Nix', async (t) => {
    if (!requireNix(t)) return;
    big = await buildFixtureClosure({ largeFileMb: 100 });
    const mine = await digest(dumpNar(big.large));
    assert.ok(mine.size > 100 * 1024 * 1024);
    const theirs = await nixDumpDigest(big.large);
    assert.equal(mine.size, theirs.size);
    assert.ok(hashEquals(mine.hash, theirs.hash));
    const { stdout } = await nixBin(['nix-store', '--query', '--hash', '--', big.large]);
    assert.ok(hashEquals(mine.hash, parseHash(stdout.trim())));
  });
});

function execWithInput(args: string[], input: string): string {
  const [bin, ...rest] = args;
  return execFileSync(bin!, rest, { env: nixEnv(), input, encoding: 'utf8' }).trim();
}
