// Reading a derivation's local build log (src/store/build-log.ts) from a log directory laid out as
// Nix lays it out (drvs/<2 chars>/<rest>[.bz2]), with the real bzip2 program for `.bz2` logs.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildLogDir, buildLogPath, readBuildLog } from '../../../src/store/build-log.js';
import { NixError } from '../../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'loft-build-log-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const env = { NIX_LOG_DIR: dir };
const drv = (c: string) => `${c.repeat(32)}-thing.drv`;

function place(name: string, body: Buffer): string {
  const p = buildLogPath(name, env);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, body);
  return p;
}

void describe('local build logs', () => {
  void test("Nix's layout under NIX_LOG_DIR, else /nix/var/log/nix", () => {
    assert.equal(buildLogPath(drv('a'), env), join(dir, 'drvs', 'aa', `${'a'.repeat(30)}-thing.drv`));
    assert.equal(buildLogDir({}), '/nix/var/log/nix');
    assert.equal(buildLogDir({ NIX_LOG_DIR: '' }), '/nix/var/log/nix');
  });

  void test('a plain log is read as it is; none gives undefined', async () => {
    place(drv('b'), Buffer.from('plain log\n'));
    assert.equal((await readBuildLog(drv('b'), { env }))?.toString(), 'plain log\n');
    assert.equal(await readBuildLog(drv('c'), { env }), undefined);
  });

  void test('a .bz2 log is decompressed; a damaged one or a missing bzip2 is a NixError', async (t) => {
    try {
      execFileSync('bzip2', ['--help'], { stdio: 'ignore' });
    } catch {
      t.skip('bzip2 is not installed');
      return;
    }
    const text = Buffer.from('line\n'.repeat(1000));
    const p = place(drv('d'), execFileSync('bzip2', ['-c'], { input: text }));
    execFileSync('mv', [p, `${p}.bz2`]);
    assert.ok((await readBuildLog(drv('d'), { env }))?.equals(text));
    await assert.rejects(readBuildLog(drv('d'), { env, bzip2: 'no-such-bzip2-here' }), (err: unknown) => {
      assert.ok(err instanceof NixError);
      assert.match(err.message, /no-such-bzip2-here is not installed/);
      return true;
    });
    const q = place(drv('f'), Buffer.from('not bzip2'));
    execFileSync('mv', [q, `${q}.bz2`]);
    await assert.rejects(readBuildLog(drv('f'), { env }), NixError);
  });
});
