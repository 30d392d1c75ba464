// [http] over TLS against a real nginx (test/helpers/nginx-server.ts with a throwaway CA made by
// openssl, test/helpers/test-pki.ts), the built CLI and the machine's Nix: with `ca_file` naming the
// private CA loft uploads and Nix substitutes with our key required; without it loft stops with
// exit 4 and one line about the certificate; behind `ssl_verify_client on` loft uploads with
// `client_cert_file`/`client_key_file` and without them stops with one line that asks for them. The
// client key is registered as a secret for the suite's final no-secret-in-logs check.
import { execFile } from 'node:child_process';
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildFixtureClosure, type FixtureCase } from '../helpers/fixtures.js';
import { runLoft } from '../helpers/loft-cli.js';
import { hasNix, nixBin, nixEnv, requireNix } from '../helpers/nix-env.js';
import { nginxMissing, requireNginx, startNginx, type TestNginx } from '../helpers/nginx-server.js';
import { makeNixKey, type KeyFiles } from '../helpers/signing-keys.js';
import { skipTest } from '../helpers/skip.js';
import { makeTestPki, OPENSSL, opensslMissing, type TestPki } from '../helpers/test-pki.js';
import { registerSecret, registerSecretWithEncodings } from '../helpers/test-secrets.js';
import { closureOf, deleteLocally, hashPartOfPath } from '../helpers/upload-env.js';
import { errorLines } from '../helpers/bad-input-table.js';

const execFileAsync = promisify(execFile);
const ready = () => hasNix() && nginxMissing() === undefined && opensslMissing() === undefined;

describe('[http] over TLS to a real nginx: a private CA and mutual TLS', () => {
  let nginx: TestNginx;
  let pki: TestPki;
  let dir: string;
  let key: KeyFiles;
  let fixtures: Record<FixtureCase, string>;
  let roots: string[];

  /** A loft.toml for `url` with Basic auth and the given [http] lines, in a directory of its own. */
  async function config(url: string, httpLines: string[]): Promise<string> {
    const sub = await mkdtemp(join(dir, 'cfg-'));
    await writeFile(join(sub, 'password'), `${nginx.password}\n`, { mode: 0o600 });
    const text = [
      '[http]',
      `url = "${url}"`,
      `user = "${nginx.user}"`,
      'password_file = "password"',
      ...httpLines,
      '[loft]',
      `local_cache_path = "${join(sub, 'cache.db')}"`,
      'upload_threads = 4',
      'skip_signed_by_keys = []',
      `signing_key_path = "${key.secretPath}"`,
    ].join('\n');
    await writeFile(join(sub, 'loft.toml'), `${text}\n`, { mode: 0o600 });
    return join(sub, 'loft.toml');
  }

  const narinfoAt = (location: string, path: string) =>
    join(nginx.root, location, `${hashPartOfPath(path)}.narinfo`);

  function skipUnlessReady(t: TestContext): boolean {
    const noOpenssl = opensslMissing();
    if (noOpenssl !== undefined) {
      skipTest(t, 'openssl', `${noOpenssl}: the tests make their CA and certificates with it`);
      return false;
    }
    return requireNginx(t) && requireNix(t);
  }

  before(async () => {
    if (!ready()) return;
    dir = await mkdtemp(join(tmpdir(), 'loft-http-tls-it-'));
    pki = await makeTestPki(dir);
    registerSecretWithEncodings('TLS client key', await readFile(pki.clientKey, 'utf8'));
    // The key's base64 body alone, as a log would show it without the PEM lines.
    const body = (await readFile(pki.clientKey, 'utf8')).replace(/-----[A-Z ]+-----|\s/g, '');
    registerSecret('TLS client key (PEM body)', body);
    nginx = await startNginx({ tls: pki });
    registerSecretWithEncodings('nginx password', nginx.password);
    key = await makeNixKey(dir, 'loft-http-tls-1');
    fixtures = await buildFixtureClosure({ largeFileMb: 2 });
    roots = [fixtures.top, fixtures.large];
  });
  after(async () => {
    if (!ready()) return;
    await nginx?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  test('with ca_file the private CA: loft uploads over https and Nix substitutes with our key required', async (t) => {
    if (!skipUnlessReady(t)) return;
    const closure = await closureOf(roots);
    const cfg = await config(`${nginx.origin}/cache`, [`ca_file = "${pki.caCert}"`]);
    const run = await runLoft(['-c', cfg, '--upload-path', ...roots]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, new RegExp(`uploaded ${closure.length} paths`));
    // Nix 2.8 trusts what NIX_SSL_CERT_FILE names (it has no ssl-cert-file setting yet).
    await deleteLocally(closure, Object.values(fixtures));
    const env = { ...nixEnv(), NIX_SSL_CERT_FILE: pki.caCert };
    await nixBin(
      [
        'nix-store',
        '--realise',
        '--option',
        'substituters',
        `${nginx.origin}/cache`,
        '--option',
        'trusted-public-keys',
        key.publicKey,
        '--option',
        'require-sigs',
        'true',
        '--',
        ...roots,
      ],
      env,
    );
    for (const p of closure) assert.ok(existsSync(p), `${p} substituted over https`);
  });

  test('without ca_file: exit 4 and one line that says the certificate was not trusted and names ca_file', async (t) => {
    if (!skipUnlessReady(t)) return;
    const cfg = await config(`${nginx.origin}/cache/noca`, []);
    const run = await runLoft(['-c', cfg, '--upload-path', fixtures.leaf]);
    assert.equal(run.code, 4, run.stdout + run.stderr);
    const lines = errorLines(run);
    assert.equal(lines.length, 1, run.stdout + run.stderr);
    assert.match(lines[0]!, /TLS certificate of https:\/\/127\.0\.0\.1:\d+\/cache\/noca was not accepted/);
    assert.match(
      lines[0]!,
      /not signed by a CA this machine trusts; set http\.ca_file to the CA that signed it/,
    );
    assert.ok(!existsSync(narinfoAt('cache/noca', fixtures.leaf)));
  });

  test('ca_file naming another CA: exit 4 and one line that says the CA in ca_file did not sign it', async (t) => {
    if (!skipUnlessReady(t)) return;
    const other = await makeTestPki(join(dir, 'other'));
    const cfg = await config(`${nginx.origin}/cache/otherca`, [`ca_file = "${other.caCert}"`]);
    const run = await runLoft(['-c', cfg, '--upload-path', fixtures.leaf]);
    assert.equal(run.code, 4, run.stdout + run.stderr);
    const lines = errorLines(run);
    assert.equal(lines.length, 1, run.stdout + run.stderr);
    assert.match(lines[0]!, /not accepted .*: it is not signed by a CA in http\.ca_file/);
    assert.ok(!existsSync(narinfoAt('cache/otherca', fixtures.leaf)));
  });

  test('mutual TLS: with client_cert_file and client_key_file loft uploads', async (t) => {
    if (!skipUnlessReady(t)) return;
    const cfg = await config(`${nginx.mtlsOrigin!}/cache/mtls`, [
      `ca_file = "${pki.caCert}"`,
      `client_cert_file = "${pki.clientCert}"`,
      `client_key_file = "${pki.clientKey}"`,
    ]);
    const run = await runLoft(['-c', cfg, '--upload-path', fixtures.top]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.ok(existsSync(narinfoAt('cache/mtls', fixtures.top)));
    assert.ok(!/accessible by group or others/.test(run.stderr), run.stderr);
  });

  test('mutual TLS without a client certificate: exit 4 and one line that asks for client_cert_file', async (t) => {
    if (!skipUnlessReady(t)) return;
    const cfg = await config(`${nginx.mtlsOrigin!}/cache/nocert`, [`ca_file = "${pki.caCert}"`]);
    const run = await runLoft(['-c', cfg, '--upload-path', fixtures.leaf]);
    assert.equal(run.code, 4, run.stdout + run.stderr);
    const lines = errorLines(run);
    assert.equal(lines.length, 1, run.stdout + run.stderr);
    assert.match(lines[0]!, /requires a client certificate/);
    assert.match(lines[0]!, /set http\.client_cert_file and http\.client_key_file/);
    assert.ok(!existsSync(narinfoAt('cache/nocert', fixtures.leaf)));
  });

  test("a client key that is not the certificate's, or is encrypted: exit 3 and one line, nothing sent", async (t) => {
    if (!skipUnlessReady(t)) return;
    const other = await makeTestPki(join(dir, 'other-client'));
    const encrypted = join(dir, 'encrypted-client.key');
    await execFileAsync(OPENSSL, [
      'pkey',
      '-in',
      pki.clientKey,
      '-aes256',
      '-passout',
      'pass:test',
      '-out',
      encrypted,
    ]);
    const cases = [
      {
        keyFile: other.clientKey,
        message: /http\.client_key_file: .* is not the key of the certificate in /,
      },
      {
        keyFile: encrypted,
        message: /http\.client_key_file: .* is encrypted; loft reads an unencrypted key/,
      },
    ];
    for (const c of cases) {
      const mark = (await nginx.requests()).length;
      const cfg = await config(`${nginx.mtlsOrigin!}/cache/badkey`, [
        `ca_file = "${pki.caCert}"`,
        `client_cert_file = "${pki.clientCert}"`,
        `client_key_file = "${c.keyFile}"`,
      ]);
      const run = await runLoft(['-c', cfg, '--upload-path', fixtures.leaf]);
      assert.equal(run.code, 3, run.stdout + run.stderr);
      const lines = errorLines(run);
      assert.equal(lines.length, 1, run.stdout + run.stderr);
      assert.match(lines[0]!, c.message);
      assert.deepEqual((await nginx.requests()).slice(mark), [], 'no request was made');
    }
  });

  test('a client key file readable by others: a warning like the signing key gets, and the upload goes on', async (t) => {
    if (!skipUnlessReady(t)) return;
    const exposed = join(dir, 'exposed-client.key');
    await writeFile(exposed, await readFile(pki.clientKey));
    await chmod(exposed, 0o644);
    const cfg = await config(`${nginx.mtlsOrigin!}/cache/exposed`, [
      `ca_file = "${pki.caCert}"`,
      `client_cert_file = "${pki.clientCert}"`,
      `client_key_file = "${exposed}"`,
    ]);
    const run = await runLoft(['-c', cfg, '--upload-path', fixtures.leaf]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(
      run.stderr,
      new RegExp(
        `http\\.client_key_file ${exposed} is accessible by group or others \\(mode 0644\\); run chmod 600 on it`,
      ),
    );
  });
});
