// No secret in loft's output, at debug level, in any command: S3 access key, secret key and session
// token (all from *_file), three extra header values (one each from [s3.extra_headers],
// [s3.extra_headers_file] and LOFT_EXTRA_HEADER_*), and the Nix signing key (its base64, and its
// seed in base64 and hex). The credentials are real: s3rver learns the access key id, a proxy in
// front verifies every SigV4 signature with the secret key and demands the three headers. The
// failure runs include an S3 error body like AWS's own, which quotes the access key id and the
// canonical request (where the session token is a signed header). Signing key files readable by
// group or others are warned about.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { closedPort } from '../helpers/closed-port.js';
import { join } from 'node:path';
import { bucketSnapshot } from '../helpers/bad-input-table.js';
import { startIntegrationEnv, type IntegrationEnv } from '../helpers/integration-env.js';
import { logLines, runLoft, spawnLoft, type LoftRun } from '../helpers/loft-cli.js';
import { hasNix, nixBin, requireNix } from '../helpers/nix-env.js';
import { s3ErrorXml, startForwardingProxy, type ForwardingProxy, type TestS3 } from '../helpers/s3-server.js';
import { startSigV4Proxy, type SigV4Proxy } from '../helpers/sigv4-proxy.js';
import type { KeyFiles } from '../helpers/signing-keys.js';
import { findLeaks, registerSecretWithEncodings, type RegisteredSecret } from '../helpers/test-secrets.js';
import { hashPartOfPath } from '../helpers/upload-env.js';
import { skipTest } from '../helpers/skip.js';

const rand = (n: number) => randomBytes(n).toString('base64url');
const SECRETS = {
  'S3 access key id': `AKIALOFT${randomBytes(6).toString('hex').toUpperCase()}`,
  'S3 secret key': `${rand(30)}/sk`,
  'S3 session token': `IQoJb3JpZ2luX2VjE${rand(90)}`,
  'inline header value': `inline-${rand(18)}`,
  'header file value': `file-${rand(18)}`,
  'environment header value': `env-${rand(18)}`,
  'wrong S3 secret key': `wrong-${rand(24)}`,
};
type SecretKind = keyof typeof SECRETS;
for (const [kind, value] of Object.entries(SECRETS)) registerSecretWithEncodings(kind, value);

/** Every form of every secret, for this file's own checks (the final suite check sees them too). */
function secretForms(key: KeyFiles, keyLine: string): RegisteredSecret[] {
  const out: RegisteredSecret[] = [];
  for (const [kind, value] of Object.entries(SECRETS)) {
    out.push({ kind, value }, { kind: `${kind} (base64)`, value: Buffer.from(value).toString('base64') });
  }
  const payload = keyLine.slice(keyLine.indexOf(':') + 1);
  const seed = Buffer.from(payload, 'base64').subarray(0, 32);
  out.push(
    { kind: `signing key ${key.name}`, value: payload },
    { kind: 'signing key seed (base64)', value: seed.toString('base64') },
    { kind: 'signing key seed (hex)', value: seed.toString('hex') },
  );
  return out;
}

describe('no secret in any output, even with --debug', () => {
  let testEnv: IntegrationEnv | undefined;
  let dir: string;
  let s3: TestS3;
  let proxy: SigV4Proxy;
  let awsLike: ForwardingProxy;
  let key: KeyFiles;
  let forms: RegisteredSecret[];
  const paths: string[] = [];
  const runs: Array<{ what: string; run: LoftRun }> = [];

  before(async () => {
    if (!hasNix()) return;
    testEnv = await startIntegrationEnv('loft-secrets-', 'loft-secrets-test-1');
    ({ dir, s3, key } = testEnv);
    // s3rver checks only that it knows the access key id (it does not verify SigV4: the proxy does).
    const account = createRequire(import.meta.url)('s3rver/lib/models/account.js') as {
      DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void };
    };
    account.DUMMY_ACCOUNT.createKeyPair(SECRETS['S3 access key id'], SECRETS['S3 secret key']);
    proxy = await startSigV4Proxy({
      target: s3.endpoint,
      accessKeyId: SECRETS['S3 access key id'],
      secretAccessKey: SECRETS['S3 secret key'],
      region: s3.region,
      requiredHeaders: {
        'x-inline-secret': SECRETS['inline header value'],
        'x-file-secret': SECRETS['header file value'],
        'x-env-secret': SECRETS['environment header value'],
      },
    });
    awsLike = await startForwardingProxy(s3.endpoint, (req) => ({
      respond: {
        status: 403,
        headers: { 'content-type': 'application/xml' },
        body: awsSignatureError(req.headers),
      },
    }));
    forms = secretForms(key, (await readFile(key.secretPath, 'utf8')).trim());
    for (const name of ['a', 'b']) {
      await writeFile(join(dir, `${name}.txt`), `secrets ${name} ${Date.now()}\n`);
      paths.push((await nixBin(['nix-store', '--add', join(dir, `${name}.txt`)])).stdout.trim());
    }
  });
  after(async () => {
    if (!hasNix()) return;
    await nixBin(['nix-store', '--delete', '--', ...paths]).catch(() => undefined);
    await proxy.close();
    await awsLike.close();
    await testEnv?.close();
  });

  /** AWS's SignatureDoesNotMatch quotes the access key id and the canonical request. */
  function awsSignatureError(headers: Record<string, string | string[] | undefined>): string {
    const canonical = Object.entries(headers)
      .map(([k, v]) => `${k}:${String(v)}`)
      .join('\n');
    return s3ErrorXml('SignatureDoesNotMatch', 'The request signature we calculated does not match').replace(
      '<RequestId>',
      `<AWSAccessKeyId>${SECRETS['S3 access key id']}</AWSAccessKeyId><CanonicalRequest>${canonical}</CanonicalRequest><RequestId>`,
    );
  }

  async function config(name: string, o: { endpoint: string; secretKind?: SecretKind }): Promise<string> {
    const sub = await mkdtemp(join(dir, `${name}-`));
    const secretFile = async (file: string, kind: SecretKind) => {
      await writeFile(join(sub, file), `${SECRETS[kind]}\n`, { mode: 0o600 });
      return join(sub, file);
    };
    const text = [
      '[s3]',
      `bucket = "${s3.bucket}"`,
      `region = "${s3.region}"`,
      `endpoint = "${o.endpoint}"`,
      'max_attempts = 2',
      `access_key_file = "${await secretFile('access', 'S3 access key id')}"`,
      `secret_key_file = "${await secretFile('secret', o.secretKind ?? 'S3 secret key')}"`,
      `session_token_file = "${await secretFile('token', 'S3 session token')}"`,
      '[s3.extra_headers]',
      `x-inline-secret = "${SECRETS['inline header value']}"`,
      '[s3.extra_headers_file]',
      `x-file-secret = "${await secretFile('header', 'header file value')}"`,
      '[loft]',
      `local_cache_path = "${join(dir, 'cache.db')}"`,
      `signing_key_path = "${key.secretPath}"`,
      'prune_enabled = true',
      'scan_on_startup = false',
      'populate_cache_on_startup = true',
      '',
    ].join('\n');
    await writeFile(join(sub, 'loft.toml'), text, { mode: 0o600 });
    return join(sub, 'loft.toml');
  }

  const ENV = { LOFT_EXTRA_HEADER_X_ENV_SECRET: SECRETS['environment header value'] };
  async function run(what: string, args: string[], code: number): Promise<LoftRun> {
    const r = await runLoft(['--debug', ...args], { env: ENV });
    assert.equal(r.code, code, `${what}:\n${r.stdout}\n${r.stderr}`);
    runs.push({ what, run: r });
    assert.deepEqual(leaksIn(what, r), [], `${what} printed a secret`);
    return r;
  }
  const leaksIn = (what: string, r: LoftRun) =>
    findLeaks([{ file: what, text: `${r.stdout}\n${r.stderr}` }], forms).map((l) => l.kind);

  test('upload, dry run, status, populate, prune dry run: verified credentials, nothing printed', async (t) => {
    if (!requireNix(t)) return;
    if (s3.external)
      return skipTest(t, 'in-process-s3', 'reads the in-process s3rver (LOFT_TEST_S3_ENDPOINT is set)');
    const good = await config('good', { endpoint: proxy.endpoint });
    const up = await run('upload', ['-c', good, '--upload-path', paths[0]!], 0);
    assert.ok(
      logLines(up.stderr).some((l) => l.level === 20),
      'debug lines were printed',
    );
    assert.ok(
      proxy.seen.length > 2 && proxy.seen.every((r) => r.verdict === 'ok'),
      'every signature verified',
    );
    const tokens = s3.requests.filter(
      (r) => r.headers['x-amz-security-token'] === SECRETS['S3 session token'],
    );
    assert.ok(tokens.length > 0, 'the session token was sent');
    assert.ok((await bucketSnapshot(s3)).has(`${hashPartOfPath(paths[0]!)}.narinfo`));
    await run('dry run', ['-c', good, '--dry-run', '--upload-path', paths[1]!], 0);
    await run('status', ['-c', good, '--status'], 0);
    await run('populate', ['-c', good, '--populate-cache'], 0);
    await run('prune dry run', ['-c', good, '--prune', '--dry-run'], 0);
  });

  test('the daemon, started and stopped with --debug', async (t) => {
    if (!requireNix(t)) return;
    if (s3.external)
      return skipTest(t, 'in-process-s3', 'reads the in-process s3rver (LOFT_TEST_S3_ENDPOINT is set)');
    const cfg = await config('daemon', { endpoint: proxy.endpoint });
    const child = spawnLoft(['-c', cfg, '--debug'], { env: { ...process.env, ...ENV } });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', r));
    const end = Date.now() + 20_000;
    while (!stderr.includes('daemon started') && Date.now() < end && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGTERM');
    const code = await exited;
    assert.ok(stderr.includes('daemon started'), stderr);
    assert.equal(code, 0, stderr);
    assert.deepEqual(leaksIn('daemon', { code, stdout: '', stderr }), []);
  });

  test('failures: wrong secret, an AWS-style error quoting the request, a closed port, bad TOML', async (t) => {
    if (!requireNix(t)) return;
    if (s3.external)
      return skipTest(t, 'in-process-s3', 'reads the in-process s3rver (LOFT_TEST_S3_ENDPOINT is set)');
    const wrong = await config('wrong', { endpoint: proxy.endpoint, secretKind: 'wrong S3 secret key' });
    const refused = await run('wrong secret', ['-c', wrong, '--upload-path', paths[1]!], 4);
    assert.match(refused.stderr, /^loft: .*refused .*SignatureDoesNotMatch/m);
    const aws = await config('aws-like', { endpoint: awsLike.endpoint });
    await run('AWS-style error on upload', ['-c', aws, '--upload-path', paths[1]!], 4);
    await run('AWS-style error on prune', ['-c', aws, '--prune'], 4);
    await run('AWS-style error on populate', ['-c', aws, '--populate-cache'], 4);
    await run(
      'closed port',
      [
        '-c',
        await config('closed', { endpoint: `http://127.0.0.1:${await closedPort()}` }),
        '--upload-path',
        paths[1]!,
      ],
      4,
    );
    // A syntax error on the line that holds a secret must not quote the line.
    const badToml = join(dir, 'bad.toml');
    await writeFile(badToml, `[s3]\nbucket = "b"\nsecret_key = "${SECRETS['S3 secret key']}\n`, {
      mode: 0o600,
    });
    await run('TOML error on a secret line', ['-c', badToml, '--status'], 3);
    t.diagnostic(`${runs.length} runs checked for ${forms.length} secret forms`);
  });

  test('a signing key file readable by group or others is warned about; 0600 is not', async (t) => {
    if (!requireNix(t)) return;
    const cfg = join(dir, 'local.toml');
    await writeFile(
      cfg,
      `[local]\npath = "${join(dir, 'local-cache')}"\n[loft]\nlocal_cache_path = "${join(dir, 'local.db')}"\nsigning_key_path = "${key.secretPath}"\n`,
    );
    const warningsFor = async (mode: number) => {
      await chmod(key.secretPath, mode);
      // --status reads no secret file (see main.ts); --clear-cache loads the whole config.
      const r = await runLoft(['-c', cfg, '--clear-cache']);
      assert.equal(r.code, 0, r.stderr);
      return logLines(r.stderr)
        .filter((l) => l.level === 40)
        .map((l) => String(l.msg));
    };
    try {
      for (const mode of [0o644, 0o640, 0o604]) {
        const octal = mode.toString(8).padStart(4, '0');
        assert.deepEqual(await warningsFor(mode), [
          `signing key file ${key.secretPath} is accessible by group or others (mode ${octal}); run chmod 600 on it`,
        ]);
      }
      assert.deepEqual(await warningsFor(0o600), []);
      assert.deepEqual(await warningsFor(0o400), []);
    } finally {
      await chmod(key.secretPath, 0o600);
    }
  });
});
