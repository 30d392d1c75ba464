// NarWorkers on real worker threads and a real directory tree: the NAR they hash equals the
// streaming encoder's, the file decompresses to it, and whatever is wrong (a size other than the
// registered one, a vanished path, a FIFO, workers closed mid-job) comes back as undefined for the
// streaming path to handle, never as an error or a hang.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import zlib from 'node:zlib';
import { dumpNar } from '../../../src/store/dump-nar.js';
import { MemoryBudget } from '../../../src/memory-budget.js';
import { NarWorkers, WORKER_NAR_BYTES } from '../../../src/upload/nar-workers.js';

let dir: string;
const MiB = 1024 * 1024;

async function streamedNar(path: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of dumpNar(path)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const sha256 = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loft-nar-workers-'));
  const tree = join(dir, 'tree');
  await mkdir(join(tree, 'sub', 'deeper'), { recursive: true });
  // Text that compresses, a random file that does not, and every node kind a NAR holds.
  await writeFile(join(tree, 'text'), 'line of text\n'.repeat(20_000));
  await writeFile(
    join(tree, 'sub', 'random.bin'),
    Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251)),
  );
  await writeFile(join(tree, 'sub', 'deeper', 'empty'), '');
  await writeFile(join(tree, 'run.sh'), '#!/bin/sh\necho hi\n');
  await chmod(join(tree, 'run.sh'), 0o755);
  await symlink('../text', join(tree, 'sub', 'link'));
  await writeFile(
    Buffer.concat([Buffer.from(join(tree, 'sub') + '/'), Buffer.from([0x6c, 0xe9, 0xff])]),
    'raw',
  );
  await mkdir(join(dir, 'fifo-tree'));
  await writeFile(join(dir, 'fifo-tree', 'padding'), 'x'.repeat(100_000));
  execFileSync('mkfifo', [join(dir, 'fifo-tree', 'pipe')]);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('NarWorkers', () => {
  test('hash and file of a tree equal the streaming encoder, for zstd and none', async () => {
    const path = join(dir, 'tree');
    const nar = await streamedNar(path);
    assert.ok(nar.length > 64 * 1024 && nar.length < WORKER_NAR_BYTES, `fixture size ${nar.length}`);
    const workers = new NarWorkers(2);
    try {
      const z = await workers.run(path, nar.length, 'zstd', 3);
      assert.ok(z, 'the worker made it');
      assert.ok(z.narHash.equals(sha256(nar)));
      assert.ok(zlib.zstdDecompressSync(z.file).equals(nar));
      assert.ok(z.fileHash.equals(sha256(z.file)));
      assert.ok(z.file.length < nar.length / 2, 'compressed');
      const none = await workers.run(path, nar.length, 'none', 0);
      assert.ok(none?.file.equals(nar));
      assert.ok(none?.fileHash.equals(sha256(nar)));
    } finally {
      workers.close();
    }
  });

  test('a file kept is never overwritten; one given back is reused and reads as empty', async () => {
    const tree = join(dir, 'tree');
    const other = join(dir, 'tree', 'sub');
    const [treeNar, otherNar] = [await streamedNar(tree), await streamedNar(other)];
    const workers = new NarWorkers(1);
    try {
      const kept = await workers.run(tree, treeNar.length, 'zstd', 3);
      const keptCopy = Buffer.from(kept!.file);
      for (let i = 0; i < 3; i++) {
        const next = await workers.run(other, otherNar.length, 'zstd', 3);
        assert.ok(zlib.zstdDecompressSync(next!.file).equals(otherNar));
        next!.giveBack();
        assert.equal(next!.file.length, 0, 'the memory went back to the worker');
        next!.giveBack(); // a second call does nothing
      }
      assert.ok(kept!.file.equals(keptCopy), 'the file not given back is untouched');
      assert.ok(zlib.zstdDecompressSync(kept!.file).equals(treeNar));
    } finally {
      workers.close();
    }
  });

  test('many jobs at once share at most `threads` workers and all finish', async () => {
    const path = join(dir, 'tree');
    const nar = await streamedNar(path);
    const workers = new NarWorkers(2);
    try {
      const runs = Array.from({ length: 7 }, (_, i) => workers.run(path, nar.length, 'zstd', 1 + (i % 3)));
      assert.ok(workers.alive <= 2);
      for (const made of await Promise.all(runs)) assert.ok(made?.narHash.equals(sha256(nar)));
      assert.equal(workers.alive, 2);
    } finally {
      workers.close();
    }
  });

  test('a size other than the registered one, a vanished path or a FIFO comes back undefined', async () => {
    const path = join(dir, 'tree');
    const nar = await streamedNar(path);
    const why: string[] = [];
    const workers = new NarWorkers(1, WORKER_NAR_BYTES, undefined, (_p, w) => why.push(w));
    try {
      assert.equal(await workers.run(path, nar.length - 8, 'zstd', 3), undefined, 'longer than registered');
      assert.equal(await workers.run(path, nar.length + 8, 'zstd', 3), undefined, 'shorter than registered');
      assert.equal(await workers.run(join(dir, 'gone'), 100_000, 'zstd', 3), undefined);
      assert.equal(await workers.run(join(dir, 'fifo-tree'), 200_000, 'zstd', 3), undefined);
      assert.equal(why.length, 4);
      assert.match(why[0]!, /longer than registered/);
      assert.match(why[2]!, /ENOENT/);
      assert.match(why[3]!, /FIFO/);
      // The worker survived all of it.
      assert.ok((await workers.run(path, nar.length, 'zstd', 3))?.narHash.equals(sha256(nar)));
      assert.equal(workers.alive, 1);
    } finally {
      workers.close();
    }
  });

  test('closing ends the workers; a running job comes back undefined; the next job starts anew', async () => {
    const path = join(dir, 'tree');
    const nar = await streamedNar(path);
    const workers = new NarWorkers(1);
    const running = workers.run(path, nar.length, 'zstd', 19);
    const queued = workers.run(path, nar.length, 'zstd', 3);
    workers.close();
    assert.equal(workers.alive, 0);
    assert.equal(await running, undefined);
    assert.equal(await queued, undefined);
    try {
      assert.ok((await workers.run(path, nar.length, 'zstd', 3))?.narHash.equals(sha256(nar)));
    } finally {
      workers.close();
    }
  });

  test('workers that die three times in a row end their use for the run: every NAR streams', async () => {
    const broken = join(dir, 'broken-worker.mjs');
    await writeFile(broken, "throw new Error('this worker cannot start');\n");
    const why: string[] = [];
    const workers = new NarWorkers(
      2,
      WORKER_NAR_BYTES,
      undefined,
      (_p, w) => why.push(w),
      pathToFileURL(broken),
    );
    try {
      const runs = Array.from({ length: 5 }, () => workers.run(join(dir, 'tree'), 100_000, 'zstd', 3));
      assert.deepEqual(await Promise.all(runs), [undefined, undefined, undefined, undefined, undefined]);
      assert.ok(why.length >= 1 && why.every((w) => /cannot start/.test(w)), why.join('\n'));
      assert.equal(workers.takes(MiB, 'zstd', 64 * 1024), false, 'no more workers this run');
      assert.equal(await workers.run(join(dir, 'tree'), 100_000, 'zstd', 3), undefined);
      assert.equal(workers.alive, 0);
    } finally {
      workers.close();
    }
  });

  test('the memory budget sets aside each worker its buffer, and gives fewer when short', () => {
    const roomy = new MemoryBudget(64 * MiB);
    assert.equal(new NarWorkers(2, 4 * MiB, roomy).threads, 2);
    assert.equal(roomy.inUse, 8 * MiB);
    assert.equal(new NarWorkers(2, 4 * MiB, new MemoryBudget(6 * MiB)).threads, 1);
    const none = new NarWorkers(2, 4 * MiB, new MemoryBudget(3 * MiB));
    assert.equal(none.threads, 0);
    assert.equal(none.takes(MiB, 'zstd', 64 * 1024), false);
  });

  test('only NARs between the small bound and the worker bound, never xz', () => {
    const w = new NarWorkers(2, 4 * MiB);
    assert.equal(w.takes(64 * 1024, 'zstd', 64 * 1024), false);
    assert.equal(w.takes(64 * 1024 + 1, 'zstd', 64 * 1024), true);
    assert.equal(w.takes(4 * MiB, 'none', 64 * 1024), true);
    assert.equal(w.takes(4 * MiB + 1, 'zstd', 64 * 1024), false);
    assert.equal(w.takes(MiB, 'xz', 64 * 1024), false);
  });

  test('an idle worker does not keep a process from exiting', async () => {
    const path = join(dir, 'tree');
    const nar = await streamedNar(path);
    const module = new URL('../../../src/upload/nar-workers.ts', import.meta.url).href;
    const script = `
      import { NarWorkers } from ${JSON.stringify(module)};
      const w = new NarWorkers(2);
      const made = await w.run(${JSON.stringify(path)}, ${nar.length}, 'zstd', 3);
      console.log(made === undefined ? 'fallback' : 'made');`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(r.signal, null, 'the process exited by itself');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'made');
  });
});
