// A server that refuses chunked request bodies (411 Length Required; nginx here, configured to):
// loft spools the compressed NAR to a temporary file and sends it with its length, in bounded
// memory, and Nix substitutes the result. The peak RSS of the CLI is measured by /usr/bin/time.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFixtureClosure, type FixtureCase } from '../helpers/fixtures.js';
import { LOFT_MAIN } from '../helpers/loft-cli.js';
import { hasNix, nixEnv, requireNix } from '../helpers/nix-env.js';
import { nginxMissing, requireNginx, startNginx, type TestNginx } from '../helpers/nginx-server.js';
import { makeNixKey, type KeyFiles } from '../helpers/signing-keys.js';
import { recordChildOutput, registerSecretWithEncodings } from '../helpers/test-secrets.js';
import { closureOf, deleteLocally, hashPartOfPath, substitute } from '../helpers/upload-env.js';

const noTime = existsSync('/usr/bin/time')
  ? undefined
  : '/usr/bin/time is not installed (apt-get install time)';
const missing = nginxMissing() ?? noTime;
const LARGE_MB = 320;
const MiB = 1024 * 1024;

/** The CLI under /usr/bin/time: exit code, output, and the peak RSS in bytes. */
async function runMeasured(args: string[]): Promise<{ code: number | null; out: string; peakRss: number }> {
  const child = spawn('/usr/bin/time', ['-f', 'loft-peak-rss-kb=%M', process.execPath, LOFT_MAIN, ...args], {
    env: { ...nixEnv(), LOFT_COMPUTE_THREADS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  recordChildOutput('--upload-path', Buffer.concat(out), Buffer.concat(err));
  const text = `${Buffer.concat(out).toString()}\n${Buffer.concat(err).toString()}`;
  const kb = Number(/loft-peak-rss-kb=(\d+)/.exec(text)?.[1] ?? Number.NaN);
  return { code, out: text, peakRss: kb * 1024 };
}

describe('[http] to a server that refuses chunked bodies (411)', () => {
  let nginx: TestNginx;
  let dir: string;
  let key: KeyFiles;
  let fixtures: Record<FixtureCase, string>;
  const ready = () => hasNix() && missing === undefined;

  before(async () => {
    if (!ready()) return;
    dir = await mkdtemp(join(tmpdir(), 'loft-http-spool-'));
    nginx = await startNginx();
    registerSecretWithEncodings('nginx password', nginx.password);
    key = await makeNixKey(dir, 'loft-http-spool-1');
    fixtures = await buildFixtureClosure({ largeFileMb: LARGE_MB });
  });
  after(async () => {
    if (!ready()) return;
    await nginx?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  test('the NAR is spooled and sent with its length; memory stays far below its size; Nix substitutes it', async (t) => {
    if (!requireNginx(t, noTime) || !requireNix(t)) return;
    await writeFile(join(dir, 'pw'), `${nginx.password}\n`, { mode: 0o600 });
    const cfg = join(dir, 'loft.toml');
    const text = [
      '[http]',
      `url = "${nginx.origin}/nochunk"`,
      `user = "${nginx.user}"`,
      'password_file = "pw"',
      '[loft]',
      `local_cache_path = "${join(dir, 'cache.db')}"`,
      'skip_signed_by_keys = []',
      `signing_key_path = "${key.secretPath}"`,
    ].join('\n');
    await writeFile(cfg, `${text}\n`, { mode: 0o600 });
    const run = await runMeasured(['-c', cfg, '--upload-path', fixtures.large]);
    assert.equal(run.code, 0, run.out);
    const h = hashPartOfPath(fixtures.large);
    const puts = (await nginx.requests()).filter((l) => l.startsWith(`PUT /nochunk/nar/${h}-`));
    // One chunked try answered 411 before any body byte, then the spooled file with its length.
    assert.equal(puts.length, 2, puts.join('\n'));
    assert.match(puts[0]!, / 411 "chunked" "-"/);
    assert.match(puts[1]!, / 201 "-" "\d+"/);
    assert.ok(Number(/"(\d+)"/.exec(puts[1]!)?.[1]) > LARGE_MB * MiB, 'random data does not compress');
    t.diagnostic(`peak RSS ${(run.peakRss / MiB).toFixed(0)} MiB for a ${LARGE_MB} MiB NAR`);
    // Holding the NAR (as Nix 2.8's upsertFile does) would need more than its size on top of Node.
    // loft's memory is its compression frames and Node itself, whatever the NAR's size.
    assert.ok(run.peakRss < (LARGE_MB / 2) * MiB + 100 * MiB, `peak RSS ${run.peakRss} bytes`);
    const closure = await closureOf([fixtures.large]);
    await deleteLocally(closure, Object.values(fixtures));
    await substitute([fixtures.large], `${nginx.origin}/nochunk`, key.publicKey);
    assert.ok(existsSync(fixtures.large));
  });
});
