// The compressors are checked by independent decoders: the Debian CLIs (`zstd -d`, `xz -d`) and Nix
// itself, which copies a NAR out of a file:// binary cache we wrote and so decompresses it with its
// own libzstd/liblzma.
import { test, describe, after } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { narExtension, type Compression } from '../../src/format/bucket-layout.js';
import { createCompressor } from '../../src/upload/compression.js';
import { nixBin, nixBinBuffer, requireNix } from '../helpers/nix-env.js';
import { skipTest } from '../helpers/skip.js';

const MiB = 1024 * 1024;

/** True when the CLI runs; without it the test skips (and under CI the runner fails it). */
function requireTool(t: TestContext, tool: 'zstd' | 'xz'): boolean {
  if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0) return true;
  skipTest(t, tool, `${tool} is not on PATH: this test needs it to check our output independently`);
  return false;
}

function cliDecompress(kind: 'zstd' | 'xz', compressed: Buffer): Buffer {
  const r = spawnSync(kind, ['-d', '-c'], { input: compressed, maxBuffer: 256 * MiB });
  assert.equal(r.status, 0, `${kind} -d failed: ${r.stderr?.toString()}`);
  return r.stdout;
}

function compressible(size: number): Buffer {
  const out = Buffer.alloc(size);
  let filled = 0;
  for (let i = 0; filled < size; i++) {
    filled += out.write(`/nix/store/${i % 997}-line ${i} of a fairly repetitive text\n`, filled);
  }
  return out;
}

/** Feeds `data` in uneven chunks (as a NAR stream would arrive) and collects the output. */
async function compressAll(compressor: Transform, data: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const pieces: Buffer[] = [];
  for (let off = 0, n = 1; off < data.length; off += n, n = (n * 7 + 13) % 300_000) {
    pieces.push(data.subarray(off, off + n));
  }
  await pipeline(
    Readable.from(pieces),
    compressor,
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        cb();
      },
    }),
  );
  return Buffer.concat(chunks);
}

void describe('round trips through the Debian CLIs', () => {
  const sizes: Array<[string, number]> = [
    ['0 bytes', 0],
    ['1 byte', 1],
    ['1 MiB', MiB],
    ['20 MiB', 20 * MiB],
  ];
  for (const [label, size] of sizes) {
    for (const [dataKind, make] of [
      ['random', randomBytes],
      ['compressible', compressible],
    ] as const) {
      void test(`zstd, ${label} ${dataKind}`, async (t) => {
        if (!requireTool(t, 'zstd')) return;
        const data = make(size);
        const out = await compressAll(createCompressor('zstd', {}), data);
        assert.ok(cliDecompress('zstd', out).equals(data), 'zstd -d gives back the input');
        if (dataKind === 'compressible' && size >= MiB) assert.ok(out.length < size / 10);
      });
      void test(`xz, ${label} ${dataKind}`, async (t) => {
        if (!requireTool(t, 'xz')) return;
        const data = make(size);
        // Preset 6 on 20 MiB takes 10-20 s here (one 24 MiB block, so one thread); preset 0 (1 MiB
        // blocks) exercises the same multi-block, multi-threaded path in a fraction of it.
        const level = size > MiB ? 0 : 6;
        const out = await compressAll(createCompressor('xz', { level }), data);
        assert.ok(cliDecompress('xz', out).equals(data), 'xz -d gives back the input');
        if (dataKind === 'compressible' && size >= MiB) assert.ok(out.length < size / 10);
      });
    }
  }

  void test('zstd with one and with two threads, several levels', async (t) => {
    if (!requireTool(t, 'zstd')) return;
    const data = Buffer.concat([compressible(6 * MiB), randomBytes(3 * MiB), compressible(5 * MiB)]);
    for (const [threads, level] of [
      [1, 1],
      [1, 3],
      [2, 3],
      [2, 9],
    ] as const) {
      const out = await compressAll(createCompressor('zstd', { threads, level }), data);
      assert.ok(cliDecompress('zstd', out).equals(data), `threads ${threads} level ${level}`);
    }
  });

  void test('xz writes a CRC64 check, like xz does by default, with one thread or two', async (t) => {
    if (!requireTool(t, 'xz')) return;
    for (const threads of [1, 2]) {
      const out = await compressAll(createCompressor('xz', { level: 1, threads }), compressible(MiB));
      // Stream header: magic (6 bytes), then flags 0x00 and the check type (0x04 = CRC64).
      assert.deepEqual([...out.subarray(6, 8)], [0x00, 0x04]);
      assert.ok(cliDecompress('xz', out).equals(compressible(MiB)));
    }
  });
});

void describe('Nix reads what we write', () => {
  const dirs: string[] = [];
  const storePaths: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    // Best effort: the paths are garbage (no roots); a failure here must not fail the suite.
    if (storePaths.length > 0)
      await nixBin(['nix-store', '--delete', '--', ...storePaths]).catch(() => undefined);
  });

  /** A fresh store path with random and repetitive content; returns it, its NAR and NarHash. */
  async function storePathWithNar(): Promise<{ path: string; nar: Buffer; narHash: string }> {
    const dir = await mkdtemp(join(tmpdir(), 'loft-compress-nix-'));
    dirs.push(dir);
    const file = join(dir, 'payload');
    await writeFile(file, Buffer.concat([randomBytes(2 * MiB), compressible(3 * MiB)]));
    const path = (await nixBin(['nix-store', '--add', '--', file])).stdout.trim();
    storePaths.push(path);
    const nar = await nixBinBuffer(['nix-store', '--dump', '--', path]);
    const narHash = (await nixBin(['nix-store', '-q', '--hash', '--', path])).stdout.trim();
    return { path, nar, narHash };
  }

  /** Writes a one-path file:// binary cache holding `compressed`, as Nix's layout has it. */
  async function writeCache(
    path: string,
    kind: Compression,
    compressed: Buffer,
    nar: Buffer,
    narHash: string,
  ) {
    const dir = await mkdtemp(join(tmpdir(), 'loft-compress-cache-'));
    dirs.push(dir);
    await mkdir(join(dir, 'nar'));
    const url = `nar/payload.${narExtension(kind)}`;
    await writeFile(join(dir, url), compressed);
    await writeFile(join(dir, 'nix-cache-info'), 'StoreDir: /nix/store\n');
    const narinfo = [
      `StorePath: ${path}`,
      `URL: ${url}`,
      `Compression: ${kind}`,
      `NarHash: ${narHash}`,
      `NarSize: ${nar.length}`,
      'References: ',
      '',
    ].join('\n');
    await writeFile(
      join(dir, `${path.slice('/nix/store/'.length, '/nix/store/'.length + 32)}.narinfo`),
      narinfo,
    );
    return dir;
  }

  const cases: Array<[Compression, number, number]> = [
    ['zstd', 3, 1],
    ['zstd', 3, 2],
    ['xz', 6, 1],
    ['xz', 0, 2],
  ];
  for (const [kind, level, threads] of cases) {
    void test(`${kind} level ${level}, ${threads} thread(s)`, async (t) => {
      if (!requireNix(t)) return;
      const { path, nar, narHash } = await storePathWithNar();
      const compressed = await compressAll(createCompressor(kind, { level, threads }), nar);
      const src = await writeCache(path, kind, compressed, nar, narHash);
      // Copying to an uncompressed cache makes Nix decompress our file and write the NAR back out.
      // Nix 2.8 does not check NarHash on a cache-to-cache copy, so the bytes are compared here.
      const dst = `${src}-copy`;
      dirs.push(dst);
      await nixBin([
        'nix',
        'copy',
        '--no-check-sigs',
        '--from',
        `file://${src}`,
        '--to',
        `file://${dst}?compression=none`,
        '--',
        path,
      ]);
      const copied = await readdir(join(dst, 'nar'));
      assert.equal(copied.length, 1);
      assert.ok((await readFile(join(dst, 'nar', copied[0]!))).equals(nar), 'Nix decoded the same NAR');
    });
  }
});
