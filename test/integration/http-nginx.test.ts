// [http] against a real nginx with WebDAV (test/helpers/nginx-server.ts), the built CLI and the
// machine's Nix: loft uploads a closure with Basic auth in Nix's own protocol, Nix substitutes it
// with our key required, verify is clean, a prune lists with PROPFIND and deletes with DELETE; a
// cache `nix copy --to http://` wrote is read by loft; a wrong password and a read-only location
// stop with exit 4 and one line; a location without PROPFIND still takes uploads.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFixtureClosure, type FixtureCase } from '../helpers/fixtures.js';
import { runLoft } from '../helpers/loft-cli.js';
import { hasNix, nixBin, requireNix } from '../helpers/nix-env.js';
import { nginxMissing, requireNginx, startNginx, type TestNginx } from '../helpers/nginx-server.js';
import { makeNixKey, type KeyFiles } from '../helpers/signing-keys.js';
import { registerSecretWithEncodings } from '../helpers/test-secrets.js';
import { closureOf, deleteLocally, hashPartOfPath, substitute } from '../helpers/upload-env.js';
import { errorLines } from '../helpers/bad-input-table.js';

const missing = nginxMissing();

describe('[http] to a real nginx with WebDAV', () => {
  let nginx: TestNginx;
  let dir: string;
  let key: KeyFiles;
  let fixtures: Record<FixtureCase, string>;
  let roots: string[];
  let closure: string[];
  const ready = () => hasNix() && missing === undefined;

  /** A loft.toml for `location` (cache, ro, nolist...) below nginx, in a directory of its own. */
  async function config(location: string, opts: { password?: string; extraLoft?: string } = {}) {
    const sub = await mkdtemp(join(dir, `${location.replace(/\W/g, '-')}-`));
    await writeFile(join(sub, 'password'), `${opts.password ?? nginx.password}\n`, { mode: 0o600 });
    const text = [
      '[http]',
      `url = "${nginx.origin}/${location}"`,
      `user = "${nginx.user}"`,
      'password_file = "password"',
      '[loft]',
      `local_cache_path = "${join(sub, 'cache.db')}"`,
      'upload_threads = 4',
      'skip_signed_by_keys = []',
      `signing_key_path = "${key.secretPath}"`,
      opts.extraLoft ?? '',
    ].join('\n');
    await writeFile(join(sub, 'loft.toml'), `${text}\n`, { mode: 0o600 });
    return join(sub, 'loft.toml');
  }

  function skipUnlessReady(t: TestContext): boolean {
    return requireNginx(t) && requireNix(t);
  }

  before(async () => {
    if (!ready()) return;
    dir = await mkdtemp(join(tmpdir(), 'loft-http-it-'));
    nginx = await startNginx();
    registerSecretWithEncodings('nginx password', nginx.password);
    key = await makeNixKey(dir, 'loft-http-1');
    // 5 MiB: above what the NAR workers make whole (4 MiB), so the large NAR streams.
    fixtures = await buildFixtureClosure({ largeFileMb: 5 });
    roots = [fixtures.top, fixtures.tree, fixtures.symlinkOut, fixtures.large, fixtures.caUser];
    closure = await closureOf(roots);
  });
  after(async () => {
    if (!ready()) return;
    await nginx?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  test('uploads a closure with Basic auth: HEAD, nix-cache-info, each NAR before its narinfo, Nix content types', async (t) => {
    if (!skipUnlessReady(t)) return;
    const run = await runLoft(['-c', await config('cache'), '--upload-path', ...roots]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`uploaded ${closure.length} paths`));
    const log = await nginx.requests();
    const puts = log.filter((l) => l.startsWith('PUT /cache/'));
    assert.ok(
      puts.some((l) => /^PUT \/cache\/nix-cache-info 201 .*"text\/x-nix-cache-info"$/.test(l)),
      log.join('\n'),
    );
    for (const p of closure) {
      const h = hashPartOfPath(p);
      assert.ok(
        log.some((l) => l.startsWith(`HEAD /cache/${h}.narinfo 404`)),
        `HEAD for ${p}`,
      );
      const nar = puts.findIndex((l) => l.startsWith(`PUT /cache/nar/${h}-`));
      const narinfo = puts.findIndex((l) => l.startsWith(`PUT /cache/${h}.narinfo 201`));
      assert.ok(nar >= 0 && narinfo > nar, `NAR of ${p} before its narinfo`);
      assert.match(puts[nar]!, / 20[14] .*"application\/x-nix-nar"$/);
      assert.match(puts[narinfo]!, /"text\/x-nix-narinfo"$/);
    }
    // The 5 MiB NAR streams chunked; small ones go with their length.
    const large = hashPartOfPath(fixtures.large);
    assert.match(
      puts.find((l) => l.startsWith(`PUT /cache/nar/${large}-`))!,
      / 201 "chunked" "-"/,
    );
    assert.match(
      puts.find((l) => l.startsWith(`PUT /cache/${large}.narinfo`))!,
      / 201 "-" "\d+"/,
    );
  });

  test('Nix substitutes everything with our key required, and loft verify is clean', async (t) => {
    if (!skipUnlessReady(t)) return;
    await deleteLocally(closure, Object.values(fixtures));
    await substitute(roots, `${nginx.origin}/cache`, key.publicKey);
    for (const p of closure) assert.ok(existsSync(p), `${p} substituted`);
    const verify = await runLoft(['-c', await config('cache'), 'verify', '--check-contents']);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, new RegExp(`${closure.length} narinfos, 0 problems`));
  });

  test('a cache written by nix copy --to http:// is read by loft: populate, verify, prune (PROPFIND, DELETE)', async (t) => {
    if (!skipUnlessReady(t)) return;
    const netrc = join(dir, 'netrc');
    await writeFile(netrc, `machine 127.0.0.1 login ${nginx.user} password ${nginx.password}\n`, {
      mode: 0o600,
    });
    const url = `${nginx.origin}/cache/nixcopy`;
    await nixBin(['nix', 'copy', '--option', 'netrc-file', netrc, '--to', url, ...roots]);
    const prune =
      'prune_enabled = true\nprune_retention_days = 30\nprune_grace_hours = 0\nprune_orphan_grace_hours = 0';
    const cfg = await config('cache/nixcopy', { extraLoft: prune });
    const populate = await runLoft(['-c', cfg, '--populate-cache']);
    assert.equal(populate.code, 0, populate.stderr);
    assert.match(populate.stdout + populate.stderr, new RegExp(`${closure.length}`));
    const verify = await runLoft(['-c', cfg, 'verify']);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, new RegExp(`${closure.length} narinfos, 0 problems`));
    // Everything 60 days old (nginx reports the files' mtimes in PROPFIND): all of it expires.
    const root = join(nginx.root, 'cache', 'nixcopy');
    const old = new Date(Date.now() - 60 * 86_400_000);
    for (const sub of ['', 'nar']) {
      for (const f of await readdir(join(root, sub), { withFileTypes: true })) {
        if (f.isFile()) await utimes(join(root, sub, f.name), old, old);
      }
    }
    const mark = (await nginx.requests()).length;
    const dry = await runLoft(['-c', cfg, '--prune', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`would delete ${closure.length} paths`));
    const real = await runLoft(['-c', cfg, '--prune']);
    assert.equal(real.code, 0, real.stderr);
    const log = (await nginx.requests()).slice(mark);
    assert.ok(
      log.some((l) => l.startsWith('PROPFIND /cache/nixcopy/ 207')),
      log.join('\n'),
    );
    for (const p of closure) {
      const h = hashPartOfPath(p);
      assert.ok(
        log.some((l) => l.startsWith(`DELETE /cache/nixcopy/${h}.narinfo 204`)),
        `DELETE ${p}`,
      );
      assert.ok(!existsSync(join(root, `${h}.narinfo`)), `${p}'s narinfo deleted`);
    }
  });

  test('a wrong password: exit 4 and one line that names the credentials, nothing written', async (t) => {
    if (!skipUnlessReady(t)) return;
    const cfg = await config('cache/wrongpw', { password: 'not-the-password' });
    const run = await runLoft(['-c', cfg, '--upload-path', fixtures.leaf]);
    assert.equal(run.code, 4, run.stdout + run.stderr);
    const lines = errorLines(run);
    assert.equal(lines.length, 1, run.stdout + run.stderr);
    assert.match(lines[0]!, /HTTP 401 .*credentials were refused; check http\.user and password_file/);
    assert.ok(!existsSync(join(nginx.root, 'cache', 'wrongpw', `${hashPartOfPath(fixtures.leaf)}.narinfo`)));
  });

  test('a read-only location (403 on PUT): exit 4 and one line', async (t) => {
    if (!skipUnlessReady(t)) return;
    const run = await runLoft(['-c', await config('ro'), '--upload-path', fixtures.leaf]);
    assert.equal(run.code, 4, run.stdout + run.stderr);
    const lines = errorLines(run);
    assert.equal(lines.length, 1, run.stdout + run.stderr);
    assert.match(lines[0]!, /HTTP 403 .*writing there is forbidden/);
  });

  test('a location without PROPFIND: uploads work; --populate-cache and verify stop with one line', async (t) => {
    if (!skipUnlessReady(t)) return;
    const cfg = await config('nolist');
    const up = await runLoft(['-c', cfg, '--upload-path', fixtures.top]);
    assert.equal(up.code, 0, up.stderr);
    for (const args of [['--populate-cache'], ['verify']]) {
      const run = await runLoft(['-c', cfg, ...args]);
      assert.equal(run.code, 4, run.stdout + run.stderr);
      const lines = errorLines(run);
      assert.equal(lines.length, 1, run.stdout + run.stderr);
      assert.match(lines[0]!, /cannot list its files \(PROPFIND answered HTTP 405\)/);
    }
    // verify PATH... walks the closure through the narinfos instead of a listing.
    const top = await closureOf([fixtures.top]);
    const verify = await runLoft(['-c', cfg, 'verify', fixtures.top]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, new RegExp(`${top.length} narinfos, 0 problems`));
    const leaf = hashPartOfPath(fixtures.leaf);
    await rm(join(nginx.root, 'nolist', `${leaf}.narinfo`));
    const broken = await runLoft(['-c', cfg, 'verify', fixtures.top]);
    assert.equal(broken.code, 6, broken.stdout + broken.stderr);
    assert.match(broken.stdout, new RegExp(`reference ${leaf}-[^ ]+ has no narinfo`));
  });
});
