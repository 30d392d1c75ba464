// nix-stored's documented behaviour, as a protocol test: the built CLI uploads to a small server
// in the test helpers that answers as nix-stored does (test/helpers/nix-stored-standin.ts). This is
// not an integration test with nix-stored itself, which cannot be installed here.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorLines } from '../helpers/bad-input-table.js';
import { buildFixtureClosure, type FixtureCase } from '../helpers/fixtures.js';
import { runLoft } from '../helpers/loft-cli.js';
import { hasNix, requireNix } from '../helpers/nix-env.js';
import { startNixStoredStandin, type NixStoredStandin } from '../helpers/nix-stored-standin.js';
import { makeNixKey, type KeyFiles } from '../helpers/signing-keys.js';
import { registerSecretWithEncodings } from '../helpers/test-secrets.js';
import { closureOf, hashPartOfPath } from '../helpers/upload-env.js';

const WRITER = { user: 'builder', password: 'stored-write-pw-7' };
const READER = { user: 'reader', password: 'stored-read-pw-3' };

describe('[http] against a stand-in answering as nix-stored does', () => {
  let server: NixStoredStandin;
  let dir: string;
  let key: KeyFiles;
  let fixtures: Record<FixtureCase, string>;
  let closure: string[];

  async function config(opts: { password?: string; loft?: string } = {}): Promise<string> {
    const sub = await mkdtemp(join(dir, 'cfg-'));
    await writeFile(join(sub, 'pw'), `${opts.password ?? WRITER.password}\n`, { mode: 0o600 });
    const text = [
      '[http]',
      `url = "${server.url}"`,
      `user = "${WRITER.user}"`,
      'password_file = "pw"',
      '[loft]',
      `local_cache_path = "${join(sub, 'cache.db')}"`,
      'skip_signed_by_keys = []',
      `signing_key_path = "${key.secretPath}"`,
      opts.loft ?? '',
    ].join('\n');
    await writeFile(join(sub, 'loft.toml'), `${text}\n`, { mode: 0o600 });
    return join(sub, 'loft.toml');
  }

  before(async () => {
    if (!hasNix()) return;
    dir = await mkdtemp(join(tmpdir(), 'loft-stored-'));
    server = await startNixStoredStandin({ read: READER, write: WRITER });
    registerSecretWithEncodings('stand-in password', WRITER.password);
    key = await makeNixKey(dir, 'loft-stored-1');
    fixtures = await buildFixtureClosure({ largeFileMb: 2 });
    closure = await closureOf([fixtures.top, fixtures.large]);
  });
  after(async () => {
    await server?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  test('uploads narinfos and compressed NARs; a refused nix-cache-info is one warning, and its JSON is read', async (t) => {
    if (!requireNix(t)) return;
    // Priority 40 differs from the JSON's 30, so loft wants to write nix-cache-info: nix-stored has no PUT for it.
    const run = await runLoft([
      '-c',
      await config({ loft: 'priority = 40' }),
      '--upload-path',
      fixtures.top,
      fixtures.large,
    ]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, new RegExp(`uploaded ${closure.length} paths`));
    assert.ok(server.requests.includes('GET /nix-cache-info 200'));
    assert.ok(server.requests.includes('PUT /nix-cache-info 405'), server.requests.join('\n'));
    const warnings = run.stderr.split('\n').filter((l) => l.includes('takes no uploads of'));
    assert.equal(warnings.length, 1, run.stderr);
    assert.match(warnings[0]!, /takes no uploads of nix-cache-info/);
    for (const p of closure) {
      const h = hashPartOfPath(p);
      assert.ok(server.objects.has(`${h}.narinfo`), `narinfo of ${p}`);
      assert.ok([...server.objects.keys()].some((k) => k.startsWith(`nar/${h}-`) && k.endsWith('.nar.zst')));
    }
    // With the priority the JSON says (30, the default), loft has nothing to write: it read the JSON.
    const mark = server.requests.length;
    const again = await runLoft(['-c', await config(), '--upload-path', fixtures.symlinkOut]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.ok(
      !server.requests.slice(mark).some((l) => l.startsWith('PUT /nix-cache-info')),
      server.requests.join('\n'),
    );
    // At most this run's one warning, about the build log it could not store (nix-stored has no log/).
    const againWarnings = again.stderr.split('\n').filter((l) => l.includes('takes no uploads of'));
    assert.ok(againWarnings.length <= 1, again.stderr);
    assert.ok(!againWarnings.some((l) => /takes no uploads of nix-cache-info/.test(l)), again.stderr);
  });

  test('a wrong password (nix-stored answers 500): exit 4, one line saying to check the credentials', async (t) => {
    if (!requireNix(t)) return;
    const before = server.requests.length;
    const run = await runLoft(['-c', await config({ password: 'wrong' }), '--upload-path', fixtures.leaf]);
    assert.equal(run.code, 4, run.stdout + run.stderr);
    const lines = errorLines(run);
    assert.equal(lines.length, 1, run.stdout + run.stderr);
    assert.match(lines[0]!, /HTTP 500 .*first request with credentials: check the credentials/);
    // Recognised at once: nix-stored says "Wrong Credentials", which no retry changes.
    assert.deepEqual(server.requests.slice(before), ['GET /nix-cache-info 500']);
  });

  test('compression = "none": nix-stored has no uncompressed .nar, and loft says so', async (t) => {
    if (!requireNix(t)) return;
    // A path no earlier test uploaded (their closures overlap).
    const uploaded = new Set([...closure, ...(await closureOf([fixtures.symlinkOut]))]);
    const fresh = [fixtures.caUser, fixtures.tree].find((p) => !uploaded.has(p))!;
    const run = await runLoft(['-c', await config({ loft: 'compression = "none"' }), '--upload-path', fresh]);
    assert.equal(run.code, 4, run.stdout + run.stderr);
    const lines = errorLines(run);
    assert.equal(lines.length, 1, run.stdout + run.stderr);
    assert.match(lines[0]!, /stores no uncompressed NARs .*set loft\.compression to "zstd"/);
  });

  test('without a listing, verify of the whole cache and --populate-cache stop with one line; verify PATH... works', async (t) => {
    if (!requireNix(t)) return;
    const cfg = await config();
    for (const args of [['verify'], ['--populate-cache']]) {
      const run = await runLoft(['-c', cfg, ...args]);
      assert.equal(run.code, 4, run.stdout + run.stderr);
      const lines = errorLines(run);
      assert.equal(lines.length, 1, run.stdout + run.stderr);
      assert.match(lines[0]!, /cannot list its files \(PROPFIND answered HTTP 404\)/);
    }
    const verify = await runLoft(['-c', cfg, 'verify', fixtures.top, fixtures.large]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, new RegExp(`${closure.length} narinfos, 0 problems`));
  });
});
