// Reading a derivation's local build log (src/store/build-log.ts) from a log directory laid out as
// Nix lays it out (drvs/<2 chars>/<rest>[.bz2]): `.bz2` logs made by the real bzip2 program,
// decoded in the process, and by the program when the decoder refuses one or it is large.
import { after, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildLogDir,
  buildLogPath,
  IN_PROCESS_BZIP2_BYTES,
  readBuildLog,
} from '../../../src/store/build-log.js';
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

function placeBz2(name: string, body: Buffer): void {
  const p = buildLogPath(name, env);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(`${p}.bz2`, body);
}

function needBzip2(t: TestContext): boolean {
  try {
    execFileSync('bzip2', ['--help'], { stdio: 'ignore' });
    return true;
  } catch {
    t.skip('bzip2 is not installed');
    return false;
  }
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

  void test('a plain log larger than one synchronous read comes whole through the thread pool', async () => {
    const text = Buffer.from('a long build\n'.repeat((IN_PROCESS_BZIP2_BYTES * 3) / 13));
    assert.ok(text.length > IN_PROCESS_BZIP2_BYTES);
    place(drv('h'), text);
    assert.ok((await readBuildLog(drv('h'), { env }))?.equals(text));
    // At the limit, the synchronous read takes it all.
    const edge = randomBytes(IN_PROCESS_BZIP2_BYTES);
    place(drv('i'), edge);
    assert.ok((await readBuildLog(drv('i'), { env }))?.equals(edge));
  });

  void test('a .bz2 log is decoded in the process, without the bzip2 program', async (t) => {
    if (!needBzip2(t)) return;
    const text = Buffer.from('line\n'.repeat(1000));
    placeBz2(drv('d'), execFileSync('bzip2', ['-c'], { input: text }));
    const noProgram = { env, bzip2: 'no-such-bzip2-here' };
    assert.ok((await readBuildLog(drv('d'), noProgram))?.equals(text));
  });

  void test('a damaged .bz2 goes to the bzip2 program: its error, or a missing program, is a NixError', async (t) => {
    if (!needBzip2(t)) return;
    placeBz2(drv('f'), Buffer.from('not bzip2'));
    await assert.rejects(readBuildLog(drv('f'), { env }), NixError);
    await assert.rejects(readBuildLog(drv('f'), { env, bzip2: 'no-such-bzip2-here' }), (err: unknown) => {
      assert.ok(err instanceof NixError);
      assert.match(err.message, /no-such-bzip2-here is not installed/);
      return true;
    });
  });

  void test('a .bz2 log larger than the in-process limit is decoded by the program', async (t) => {
    if (!needBzip2(t)) return;
    const text = randomBytes(IN_PROCESS_BZIP2_BYTES + 1000); // incompressible: the .bz2 is larger
    placeBz2(drv('g'), execFileSync('bzip2', ['-c'], { input: text }));
    assert.ok((await readBuildLog(drv('g'), { env }))?.equals(text));
    await assert.rejects(readBuildLog(drv('g'), { env, bzip2: 'no-such-bzip2-here' }), NixError);
  });
});
