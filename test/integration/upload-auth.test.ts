// SigV4 and extra headers against a proxy that verifies signatures like S3 and strips the extra
// headers like Cloudflare Access: loft's requests must pass, carry the headers unsigned, and no
// secret may reach its output.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { buildFixtureClosure, type FixtureCase } from '../helpers/fixtures.js';
import { runLoft } from '../helpers/loft-cli.js';
import { hasNix, requireNix } from '../helpers/nix-env.js';
import { startIntegrationEnv, type IntegrationEnv } from '../helpers/integration-env.js';
import type { TestS3 } from '../helpers/s3-server.js';
import { startSigV4Proxy, type SigV4Proxy } from '../helpers/sigv4-proxy.js';
import type { KeyFiles } from '../helpers/signing-keys.js';
import { bucketNarInfo, hashPartOfPath, writeConfig } from '../helpers/upload-env.js';
import { skipTest } from '../helpers/skip.js';

const HEADER_ID = 'id-4b1d7e';
const HEADER_SECRET = 'header-secret-9c2f51';

describe('S3 auth and extra headers', () => {
  let testEnv: IntegrationEnv | undefined;
  let dir: string;
  let s3: TestS3;
  let proxy: SigV4Proxy;
  let key: KeyFiles;
  let f: Record<FixtureCase, string>;

  before(async () => {
    if (!hasNix()) return;
    testEnv = await startIntegrationEnv('loft-auth-', 'loft-auth-test-1');
    ({ dir, s3, key } = testEnv);
    proxy = await startSigV4Proxy({
      target: s3.endpoint,
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
      region: s3.region,
      requiredHeaders: { 'CF-Access-Client-Id': HEADER_ID, 'CF-Access-Client-Secret': HEADER_SECRET },
    });
    f = await buildFixtureClosure({ largeFileMb: 6 });
  });
  after(async () => {
    if (!hasNix()) return;
    await proxy.close();
    await testEnv?.close(Object.values(f ?? {}));
  });

  test('headers from TOML and LOFT_EXTRA_HEADER_* reach the server unsigned; every signature verifies', async (t) => {
    if (!requireNix(t)) return;
    if (s3.external)
      return skipTest(t, 'in-process-s3', 'the verifying proxy sits in front of the in-process server');
    const config = await writeConfig({
      dir,
      s3: { ...s3, endpoint: proxy.endpoint },
      signingKeyPath: key.secretPath,
      // The environment wins over the file: this inline secret is wrong on purpose.
      extraS3: `[s3.extra_headers]\n"CF-Access-Client-Id" = "${HEADER_ID}"\n"CF-Access-Client-Secret" = "overridden"`,
    });
    const run = await runLoft(['-c', config, '--debug', '--upload-path', f.top, f.large], {
      env: { LOFT_EXTRA_HEADER_CF_ACCESS_CLIENT_SECRET: HEADER_SECRET },
    });
    assert.equal(run.code, 0, run.stderr);
    assert.ok(proxy.seen.length > 5, 'requests went through the proxy');
    for (const r of proxy.seen) {
      assert.equal(r.verdict, 'ok', `${r.method} ${r.url}`);
      assert.ok(!r.signedHeaders.some((h) => h.startsWith('cf-access')), 'extra headers are not signed');
    }
    assert.ok(await bucketNarInfo(s3, hashPartOfPath(f.top)));
    for (const secret of [HEADER_SECRET, HEADER_ID, s3.secretAccessKey]) {
      assert.ok(!run.stdout.includes(secret) && !run.stderr.includes(secret), 'no secret in the output');
    }
  });

  test('a wrong secret key is refused up front: one line, exit 4, nothing uploaded', async (t) => {
    if (!requireNix(t)) return;
    if (s3.external)
      return skipTest(t, 'in-process-s3', 'the verifying proxy sits in front of the in-process server');
    const sub = await mkdtemp(join(dir, 'wrong-'));
    const config = await writeConfig({
      dir: sub,
      s3: { ...s3, endpoint: proxy.endpoint, secretAccessKey: 'definitely-wrong-secret' },
      extraS3: `[s3.extra_headers]\n"CF-Access-Client-Id" = "${HEADER_ID}"\n"CF-Access-Client-Secret" = "${HEADER_SECRET}"`,
    });
    const run = await runLoft(['-c', config, '--upload-path', f.tree]);
    assert.equal(run.code, 4, run.stderr);
    const lines = run.stderr.split('\n').filter((l) => l.startsWith('loft: '));
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0]!, /credentials|signature|access/i);
    assert.ok(!run.stderr.includes('definitely-wrong-secret'));
    assert.equal(await bucketNarInfo(s3, hashPartOfPath(f.tree)), undefined);
  });

  test('without keys in the config, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from the environment are used', async (t) => {
    if (!requireNix(t)) return;
    if (s3.external)
      return skipTest(t, 'in-process-s3', 'the verifying proxy sits in front of the in-process server');
    const sub = await mkdtemp(join(dir, 'env-'));
    const config = await writeConfig({
      dir: sub,
      s3: { ...s3, endpoint: proxy.endpoint },
      credentialsFromEnv: true,
      extraS3: `[s3.extra_headers]\n"CF-Access-Client-Id" = "${HEADER_ID}"\n"CF-Access-Client-Secret" = "${HEADER_SECRET}"`,
    });
    const env = { AWS_EC2_METADATA_DISABLED: 'true', AWS_ACCESS_KEY_ID: s3.accessKeyId };
    const wrong = await runLoft(['-c', config, '--upload-path', f.symlinkOut], {
      env: { ...env, AWS_SECRET_ACCESS_KEY: 'not-the-secret' },
    });
    assert.equal(wrong.code, 4, 'the environment secret is really what signs');
    const right = await runLoft(['-c', config, '--upload-path', f.symlinkOut], {
      env: { ...env, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey },
    });
    assert.equal(right.code, 0, right.stderr);
    assert.ok(await bucketNarInfo(s3, hashPartOfPath(f.symlinkOut)));
  });
});
