// A large NAR's multipart upload survives kill -9 of the real CLI: the rerun finds the unfinished
// upload in the state database, checks the parts it would send again against their recorded MD5,
// and sends only the rest; Nix then substitutes the path. Against moto, which lists an upload's
// parts and enforces AWS's 5 MiB minimum part size. Bytes are counted at the recording proxy.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ListMultipartUploadsCommand, ListPartsCommand, S3Client } from '@aws-sdk/client-s3';
import { writeConfig } from '../helpers/upload-env.js';
import { randomSalt } from '../helpers/fixtures.js';
import { startIntegrationEnv, type IntegrationEnv } from '../helpers/integration-env.js';
import { runLoft, spawnLoft } from '../helpers/loft-cli.js';
import { motoMissing } from '../helpers/moto-server.js';
import { nixBin, nixEnv, requireNix } from '../helpers/nix-env.js';
import type { RecordedRequest, TestS3 } from '../helpers/s3-server.js';
import {
  bucketNarInfo,
  deleteLocally,
  hashPartOfPath,
  httpCacheUrl,
  substitute,
} from '../helpers/upload-env.js';

const MiB = 1024 * 1024;
/** Over 80 MB of random bytes: incompressible, so the NAR's compressed size is about its size. */
const NAR_FILE_BYTES = 84 * MiB;

/** Bytes of NAR bodies sent (single PUTs and parts), by their Content-Length. */
function narBytesSent(requests: readonly RecordedRequest[]): number {
  return requests
    .filter((r) => r.method === 'PUT' && r.key.startsWith('nar/'))
    .reduce((sum, r) => sum + Number(r.headers['content-length'] ?? 0), 0);
}

/**
 * A proxy that forwards to `target`, except that while `stallAbove` is set it never answers a part
 * numbered above it: the first run stops there with exactly the parts below acknowledged.
 */
async function startStallingProxy(target: string) {
  const upstream = new URL(target);
  const state = { stallAbove: Infinity, answered: new Set<number>() };
  const server = http.createServer((req, res) => {
    const part = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('partNumber') ?? 0);
    if (part > state.stallAbove) return void req.resume(); // read the body, never answer
    const out = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.on('end', () => part > 0 && state.answered.add(part));
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    state,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The parts moto holds for the one unfinished upload under nar/, or 0 while there is none. */
async function partsStored(client: S3Client, s3: TestS3): Promise<number> {
  const { Uploads = [] } = await client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket }));
  const u = Uploads.find((x) => x.Key?.startsWith('nar/'));
  if (!u) return 0;
  const { Parts = [] } = await client.send(
    new ListPartsCommand({ Bucket: s3.bucket, Key: u.Key, UploadId: u.UploadId }),
  );
  return Parts.length;
}

describe('a multipart upload killed half-way is resumed (moto)', () => {
  const missing = motoMissing();
  let env: IntegrationEnv | undefined;
  let big: string | undefined;

  before(async () => {
    if (missing) return;
    env = await startIntegrationEnv('loft-resume-', 'loft-resume-test', 'moto');
  });
  after(async () => env?.close(big ? [big] : []));

  test('kill -9 at about half the parts; the rerun sends under 60 % of the NAR again', async (t) => {
    if (missing) return t.skip(missing);
    if (!requireNix(t)) return;
    const s3 = env!.s3;
    const expr = `derivation { name = "loft-resume-big"; salt = "${randomSalt()}"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; args = ["-c" "head -c ${NAR_FILE_BYTES} /dev/urandom > $out"]; }`;
    big = (await nixBin(['nix-build', '--no-out-link', '-E', expr])).stdout.trim();
    const parts = Math.ceil(NAR_FILE_BYTES / (5 * MiB)); // part_size_mb = 5 in the test config
    const half = Math.floor(parts / 2);
    // Both runs go through the stalling proxy: the endpoint is part of the target's identity.
    const stall = await startStallingProxy(s3.endpoint);
    t.after(stall.close);
    stall.state.stallAbove = half;
    const config = await writeConfig({
      dir: env!.dir,
      s3: { ...s3, endpoint: stall.endpoint },
      signingKeyPath: env!.key.secretPath,
    });

    const client = new S3Client({
      endpoint: s3.backend,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    t.after(() => client.destroy());
    const first = spawnLoft(['-c', config, '--upload-path', big], { env: nixEnv() });
    const exited = new Promise<void>((resolve) => first.once('exit', () => resolve()));
    for (let i = 0; i < 1200 && first.exitCode === null && stall.state.answered.size < half; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(stall.state.answered.size, half, `the first run had ${half} parts acknowledged`);
    // Give the client time to record the last acknowledged part, then kill it like a power cut would.
    await new Promise((r) => setTimeout(r, 500));
    first.kill('SIGKILL');
    await exited;
    const stored = await partsStored(client, s3);
    stall.state.stallAbove = Infinity;
    const sentBeforeKill = narBytesSent(s3.requests);
    assert.equal(await bucketNarInfo(s3, hashPartOfPath(big)), undefined, 'nothing was published');

    s3.requests.length = 0;
    const rerun = await runLoft(['-c', config, '--upload-path', big], { env: nixEnv() });
    assert.equal(rerun.code, 0, rerun.stderr);
    const resent = narBytesSent(s3.requests);
    const narinfo = await bucketNarInfo(s3, hashPartOfPath(big));
    assert.ok(narinfo, 'the rerun published the narinfo');
    const share = resent / narinfo.fileSize!;
    t.diagnostic(
      `NAR ${narinfo.fileSize} bytes compressed in ${parts} parts; killed after ${stored} parts stored ` +
        `(${sentBeforeKill} bytes sent); the rerun sent ${resent} bytes = ${(share * 100).toFixed(1)} %`,
    );
    assert.ok(share < 0.6, `the rerun sent ${(share * 100).toFixed(1)} % of the compressed NAR again`);
    assert.equal(await partsStored(client, s3), 0, 'no unfinished upload is left behind');

    await deleteLocally([big]);
    await substitute([big], httpCacheUrl(s3), env!.key.publicKey);
  });
});
