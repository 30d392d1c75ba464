// `loft doctor` through the built CLI against two real S3 implementations and a directory: moto
// honours conditional creates and enforces the 5 MiB part minimum, s3rver ignores both; a wrong
// secret (checked by the SigV4 proxy, since s3rver checks none) makes it exit 1. Every key doctor
// writes is gone afterwards, and no unfinished multipart upload is left.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { startIntegrationEnv, type IntegrationEnv, type S3Kind } from '../helpers/integration-env.js';
import { runLoft } from '../helpers/loft-cli.js';
import { motoMissing } from '../helpers/moto-server.js';
import { startSigV4Proxy } from '../helpers/sigv4-proxy.js';
import type { TestS3 } from '../helpers/s3-server.js';
import { bucketObjects, writeConfig } from '../helpers/upload-env.js';

interface DoctorJson {
  canWork: boolean;
  checks: Array<{ id: string; status: string; detail: string }>;
  wrote: string[];
}

const statusOf = (j: DoctorJson, id: string) => j.checks.find((c) => c.id === id)?.status;

async function unfinishedUploads(s3: TestS3): Promise<number> {
  const client = new S3Client({
    endpoint: s3.backend,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  try {
    const out = await client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket }));
    return (out.Uploads ?? []).length;
  } catch {
    return 0; // s3rver cannot list them (and keeps none after an abort)
  } finally {
    client.destroy();
  }
}

for (const kind of ['moto', 's3rver'] as const satisfies readonly S3Kind[]) {
  describe(`loft doctor against ${kind}`, () => {
    const missing = kind === 'moto' ? motoMissing() : undefined;
    let env: IntegrationEnv | undefined;
    before(async () => {
      if (!missing) env = await startIntegrationEnv(`loft-doctor-${kind}-`, 'loft-doctor-test', kind);
    });
    after(async () => env?.close());

    test('every check passes or warns, exit 0; doctor cleans up after itself', async (t) => {
      if (missing) return t.skip(missing);
      const config = await env!.config();
      const run = await runLoft(['-c', config, 'doctor']);
      t.diagnostic(`\n${run.stdout}`);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const honoured = kind === 'moto';
      assert.match(
        run.stdout,
        honoured ? /^ok\s+conditional-create\s+honoured/m : /^WARN\s+conditional-create\s+ignored/m,
      );
      assert.match(
        run.stdout,
        honoured
          ? /^ok\s+multipart\s+works; 5 MiB minimum part size enforced/m
          : /^ok\s+multipart\s+works; parts under 5 MiB accepted/m,
      );
      assert.match(run.stdout, /^loft can work with /m);
      const left = [...(await bucketObjects(env!.s3)).keys()].filter((k) => k.startsWith('.loft/doctor-'));
      assert.deepEqual(left, [], 'doctor removed every key it wrote');
      assert.equal(await unfinishedUploads(env!.s3), 0, 'no unfinished multipart upload is left');
    });

    test('--json says the same for scripts', async (t) => {
      if (missing) return t.skip(missing);
      const run = await runLoft(['-c', await env!.config(), 'doctor', '--json']);
      assert.equal(run.code, 0, run.stderr);
      const j = JSON.parse(run.stdout) as DoctorJson;
      assert.equal(j.canWork, true);
      assert.equal(statusOf(j, 'conditional-create'), kind === 'moto' ? 'ok' : 'warn');
      assert.equal(statusOf(j, 'credentials'), 'ok');
      assert.equal(statusOf(j, 'anonymous-read'), 'skip', 'no nix-cache-info in a fresh bucket');
      assert.ok(
        j.wrote.every((k) => k.startsWith('.loft/doctor-')),
        j.wrote.join(' '),
      );
    });
  });
}

describe('loft doctor with a wrong secret, a dead endpoint, a directory', () => {
  let env: IntegrationEnv | undefined;
  before(async () => {
    env = await startIntegrationEnv('loft-doctor-bad-', 'loft-doctor-test');
  });
  after(async () => env?.close());

  test('a wrong secret fails the credentials check: exit 1, with what to do', async (t) => {
    const s3 = env!.s3;
    const proxy = await startSigV4Proxy({
      target: s3.endpoint,
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
      region: s3.region,
    });
    t.after(() => proxy.close());
    const wrong = randomBytes(24).toString('base64url');
    const dir = await mkdtemp(join(env!.dir, 'wrong-'));
    const config = await writeConfig({
      dir,
      s3: { ...s3, endpoint: proxy.endpoint, secretAccessKey: wrong },
    });
    const run = await runLoft(['-c', config, 'doctor']);
    t.diagnostic(`\n${run.stdout}`);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stdout, /^FAIL\s+credentials\s+refused: SignatureDoesNotMatch -> check s3\.access_key/m);
    assert.match(run.stdout, /^loft cannot work with .*: credentials failed$/m);
    assert.ok(!run.stdout.includes(wrong) && !run.stderr.includes(wrong), 'the secret is not printed');
  });

  test('an endpoint nobody listens on fails reach, and the rest is skipped', async () => {
    const dir = await mkdtemp(join(env!.dir, 'dead-'));
    const config = await writeConfig({ dir, s3: { ...env!.s3, endpoint: 'http://127.0.0.1:9' } });
    const run = await runLoft(['-c', config, 'doctor', '--json']);
    assert.equal(run.code, 1);
    const j = JSON.parse(run.stdout) as DoctorJson;
    assert.equal(statusOf(j, 'reach'), 'fail');
    assert.equal(statusOf(j, 'credentials'), 'skip');
  });

  test('a directory target gets the subset that applies', async () => {
    const dir = await mkdtemp(join(env!.dir, 'local-'));
    const config = await writeConfig({ dir, localPath: join(dir, 'cache') });
    const run = await runLoft(['-c', config, 'doctor']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^ok\s+read-write\s+put, get and delete of \.loft\/doctor-/m);
    assert.doesNotMatch(run.stdout, /credentials|multipart/);
  });

  test('--json without doctor is a usage error', async () => {
    const run = await runLoft(['--json']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--json only goes with doctor/);
  });
});
