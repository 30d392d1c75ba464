// fsNarSource on a real temp directory: lstat semantics, raw byte names, chunked reads, and the
// errors for file kinds a NAR cannot hold and for files that change while read.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fsNarSource } from '../../../src/store/nar-source-fs.js';
import { CorruptPathError, UnsupportedFileError } from '../../../src/errors.js';

let dir: string;
let server: Server | undefined;
const p = (...parts: string[]): Buffer => Buffer.from(join(dir, ...parts));

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loft-nar-source-'));
  await writeFile(join(dir, 'plain'), 'hello');
  await writeFile(join(dir, 'exec'), '#!/bin/sh\n');
  await chmod(join(dir, 'exec'), 0o700);
  // Group/other execute bits alone do not make a NAR "executable": Nix checks S_IXUSR only.
  await writeFile(join(dir, 'group-exec'), 'x');
  await chmod(join(dir, 'group-exec'), 0o655);
  await mkdir(join(dir, 'sub'));
  await symlink('plain', join(dir, 'link'));
  await symlink('/nonexistent/target', join(dir, 'dangling'));
  await writeFile(Buffer.concat([Buffer.from(dir + '/'), Buffer.from([0x6c, 0xe9, 0xff])]), 'raw name');
  await writeFile(join(dir, 'big'), Buffer.alloc(2500, 7));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
});

after(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await rm(dir, { recursive: true, force: true });
});

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(c);
  return out;
}

describe('fsNarSource', () => {
  const src = fsNarSource({ chunkSize: 1000 });
  test('regular files, the owner-execute bit, directories', async () => {
    assert.deepEqual(await src.node(p('plain')), { type: 'regular', executable: false, size: 5 });
    assert.deepEqual(await src.node(p('exec')), { type: 'regular', executable: true, size: 10 });
    assert.deepEqual(await src.node(p('group-exec')), { type: 'regular', executable: false, size: 1 });
    assert.deepEqual(await src.node(p('sub')), { type: 'directory' });
  });
  test('symlinks are not followed, dangling ones included', async () => {
    assert.deepEqual(await src.node(p('link')), { type: 'symlink', target: Buffer.from('plain') });
    assert.deepEqual(await src.node(p('dangling')), {
      type: 'symlink',
      target: Buffer.from('/nonexistent/target'),
    });
  });
  test('names are raw bytes, also when they are not UTF-8', async () => {
    const names = await src.entries(Buffer.from(dir));
    assert.ok(names.some((n) => n.equals(Buffer.from([0x6c, 0xe9, 0xff]))));
    const raw = Buffer.concat([Buffer.from(dir + '/'), Buffer.from([0x6c, 0xe9, 0xff])]);
    assert.equal(Buffer.concat(await collect(src.contents(raw, 8))).toString(), 'raw name');
  });
  test('contents come in chunks of the configured size', async () => {
    assert.equal((await collect(fsNarSource().contents(p('big'), 2500))).length, 1);
    const chunks = await collect(src.contents(p('big'), 2500));
    assert.deepEqual(
      chunks.map((c) => c.length),
      [1000, 1000, 500],
    );
    assert.ok(Buffer.concat(chunks).equals(Buffer.alloc(2500, 7)));
  });
  test('a file that grew or shrank since lstat is a CorruptPathError', async () => {
    await assert.rejects(
      collect(src.contents(p('big'), 2499)),
      (e: unknown) => e instanceof CorruptPathError && /grew/.test(e.message),
    );
    await assert.rejects(
      collect(src.contents(p('big'), 2501)),
      (e: unknown) => e instanceof CorruptPathError && /shrank/.test(e.message),
    );
    // Small files take the one-read path.
    await assert.rejects(
      collect(src.contents(p('plain'), 4)),
      (e: unknown) => e instanceof CorruptPathError && /grew/.test(e.message),
    );
    await assert.rejects(
      collect(src.contents(p('plain'), 6)),
      (e: unknown) => e instanceof CorruptPathError && /shrank/.test(e.message),
    );
    assert.equal(Buffer.concat(await collect(src.contents(p('plain'), 5))).toString(), 'hello');
  });
  test('FIFOs and sockets are UnsupportedFileError naming the path', async () => {
    await assert.rejects(
      src.node(p('fifo')),
      (e: unknown) => e instanceof UnsupportedFileError && e.path === join(dir, 'fifo') && e.kind === 'FIFO',
    );
    const sock = join(dir, 'sock');
    server = createServer();
    await new Promise<void>((resolve) => server!.listen(sock, resolve));
    await assert.rejects(
      src.node(Buffer.from(sock)),
      (e: unknown) => e instanceof UnsupportedFileError && e.kind === 'socket',
    );
  });
  test('character devices are UnsupportedFileError', async () => {
    await assert.rejects(
      src.node(Buffer.from('/dev/null')),
      (e: unknown) => e instanceof UnsupportedFileError && e.kind === 'character device',
    );
  });
});
