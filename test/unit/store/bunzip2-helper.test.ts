// The one shell that decompresses build logs (src/store/bunzip2-helper.ts), with the real bzip2:
// many logs at once come back each whole and in its place, through one process; a log over the
// limit comes back as 'big'; a damaged one as bzip2's error.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bunzip2Helper } from '../../../src/store/bunzip2-helper.js';

const dir = mkdtempSync(join(tmpdir(), 'loft-bunzip2-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function hasBzip2(): boolean {
  try {
    execFileSync('bzip2', ['--help'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function packed(name: string, text: Buffer): string {
  const file = join(dir, `${name}.bz2`);
  writeFileSync(file, execFileSync('bzip2', ['-c'], { input: text }));
  return file;
}

test('40 logs at once: each comes back whole, in its place, from one helper process', async (t) => {
  if (!hasBzip2()) return t.skip('bzip2 is not installed');
  const helper = new Bunzip2Helper('bzip2', 1024 * 1024);
  try {
    // Sizes around pipe buffers (64 KiB) so answers arrive split and joined.
    const texts = Array.from({ length: 40 }, (_, i) => Buffer.from(`log ${i}\n`.repeat(1 + i * 997)));
    const files = texts.map((text, i) => packed(`l${i}`, text));
    const got = await Promise.all(files.map((f) => helper.decompress(f)));
    got.forEach((r, i) => assert.ok(r.kind === 'ok' && r.body.equals(texts[i]!), `log ${i}`));
    assert.equal(helper.starts, 1);
  } finally {
    helper.close();
  }
});

test('over the limit is big, a damaged file is an error, and the helper carries on', async (t) => {
  if (!hasBzip2()) return t.skip('bzip2 is not installed');
  const helper = new Bunzip2Helper('bzip2', 1000);
  try {
    assert.deepEqual(await helper.decompress(packed('big', Buffer.alloc(1000, 97))), { kind: 'big' });
    const damaged = join(dir, 'damaged.bz2');
    writeFileSync(damaged, 'not bzip2');
    const r = await helper.decompress(damaged);
    assert.equal(r.kind, 'err');
    const small = Buffer.alloc(999, 98);
    const ok = await helper.decompress(packed('small', small));
    assert.ok(ok.kind === 'ok' && ok.body.equals(small));
  } finally {
    helper.close();
  }
});
