// Buckets that cannot be used, against the built CLI: a closed port, a host that does not resolve, a
// web server that is not S3, a missing bucket, and wrong credentials or a missing access header
// against a proxy that verifies SigV4 like S3 does (s3rver itself accepts any signature). Uploads,
// prunes and --populate-cache each end with one `loft: ` line naming the bucket or endpoint, exit 4,
// and the bucket untouched.
import { after } from 'node:test';
import { createServer as createHttpServer, type Server } from 'node:http';
import { closedPort } from '../helpers/closed-port.js';
import { describeBadInput, type BadInputCase, type BadInputEnv } from '../helpers/bad-input-table.js';
import { startSigV4Proxy, type SigV4Proxy } from '../helpers/sigv4-proxy.js';
import { registerSecret } from '../helpers/test-secrets.js';

const ACCESS_HEADER = 'access-hdr-5e0c2b91f4';
registerSecret('extra header value', ACCESS_HEADER);

const closers: Array<() => Promise<void>> = [];
after(() => Promise.all(closers.map((c) => c())));

/** A web server that is not S3: every request gets `status` and an HTML page. */
async function webServer(status: number): Promise<string> {
  const server: Server = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(status, { 'content-type': 'text/html' }).end('<html>hello</html>'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

/** One verifying proxy per test file, in front of the test's s3rver; it wants ACCESS_HEADER too. */
let proxy: SigV4Proxy | undefined;
async function verifying(e: BadInputEnv): Promise<string> {
  if (!proxy) {
    proxy = await startSigV4Proxy({
      target: e.s3.endpoint,
      accessKeyId: e.s3.accessKeyId,
      secretAccessKey: e.s3.secretAccessKey,
      region: e.s3.region,
      requiredHeaders: { 'x-access-token': ACCESS_HEADER },
    });
    const p = proxy;
    closers.push(() => p.close());
  }
  return proxy.endpoint;
}

type Action = 'upload' | 'prune' | 'populate' | 'daemon';
const ACTION: Record<Action, (e: BadInputEnv) => string[]> = {
  upload: (e) => ['--upload-path', e.fresh],
  prune: () => ['--prune'],
  populate: () => ['--populate-cache'],
  // No action flag: the daemon, which must exit 4 at start instead of retrying forever.
  daemon: () => [],
};

function storageCase(
  name: string,
  action: Action,
  message: RegExp,
  s3: (e: BadInputEnv) => Promise<Record<string, string>>,
  extra = '',
): BadInputCase {
  return {
    name: `${name} (${action})`,
    code: 4,
    message,
    inProcessOnly: true,
    ...(action === 'daemon' ? { timeoutMs: 30_000 } : {}),
    args: async (e) => {
      const edits = { ...(await s3(e)), max_attempts: '1' };
      const config = await e.config(name.replace(/\W+/g, '-').slice(0, 30), { s3: edits, extra });
      return ['-c', config, ...ACTION[action](e)];
    },
  };
}

const q = (s: string) => JSON.stringify(s);
const closed = async () => ({ endpoint: q(`http://127.0.0.1:${await closedPort()}`) });
const unresolvable = () => Promise.resolve({ endpoint: q('http://loft-no-such-host.invalid:9000') });
const noBucket = () => Promise.resolve({ bucket: q('no-such-bucket') });
const viaProxy = (edits: Record<string, string>) => async (e: BadInputEnv) => ({
  endpoint: q(await verifying(e)),
  ...edits,
});
const WITH_HEADER = `[s3.extra_headers]\nx-access-token = "${ACCESS_HEADER}"`;
const UNREACHABLE =
  /^loft: cannot reach http:\/\/127\.0\.0\.1:\d+ for .* in bucket "loft-test" .*check the endpoint URL/;
const REFUSED =
  /^loft: bucket "loft-test" at http:\/\/127\.0\.0\.1:\d+ refused .*\((InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied), HTTP 403\): check the access key id/;

const cases: BadInputCase[] = [
  storageCase('closed port', 'upload', UNREACHABLE, closed),
  storageCase('closed port', 'prune', UNREACHABLE, closed),
  storageCase('closed port', 'populate', UNREACHABLE, closed),
  storageCase(
    'host name that does not resolve',
    'upload',
    /^loft: cannot reach http:\/\/loft-no-such-host\.invalid:9000/,
    unresolvable,
  ),
  storageCase(
    'missing bucket',
    'upload',
    /^loft: bucket "no-such-bucket" at .* does not exist .*: create it or fix the bucket name$/,
    noBucket,
  ),
  storageCase('missing bucket', 'prune', /^loft: bucket "no-such-bucket" at .* does not exist/, noBucket),
  storageCase('missing bucket', 'populate', /^loft: bucket "no-such-bucket" at .* does not exist/, noBucket),
  storageCase(
    'wrong secret key',
    'upload',
    REFUSED,
    viaProxy({ secret_key: q('not-the-secret') }),
    WITH_HEADER,
  ),
  storageCase(
    'wrong secret key',
    'prune',
    REFUSED,
    viaProxy({ secret_key: q('not-the-secret') }),
    WITH_HEADER,
  ),
  storageCase(
    'wrong access key id',
    'populate',
    REFUSED,
    viaProxy({ access_key: q('AKIANOTKNOWN') }),
    WITH_HEADER,
  ),
  storageCase('missing access header in front of the bucket', 'upload', REFUSED, viaProxy({})),
  storageCase(
    'endpoint is a web server answering 404',
    'upload',
    /^loft: .*"loft-test" at http:\/\/127\.0\.0\.1:\d+/,
    async () => ({
      endpoint: q(await webServer(404)),
    }),
  ),
  storageCase(
    'https against a plain-http port',
    'upload',
    /^loft: cannot talk TLS to https:\/\/127\.0\.0\.1:\d+ .*\(EPROTO\): the endpoint may be plain http/,
    (e) => Promise.resolve({ endpoint: q(e.s3.endpoint.replace(/^http:/, 'https:')) }),
  ),
  storageCase(
    'server answering 500',
    'upload',
    /^loft: list on bucket "loft-test" at http:\/\/127\.0\.0\.1:\d+ got .*HTTP 500: the server failed it/,
    async () => ({ endpoint: q(await webServer(500)) }),
  ),
  storageCase('missing bucket', 'daemon', /^loft: bucket "no-such-bucket" at .* does not exist/, noBucket),
  storageCase(
    'wrong secret key',
    'daemon',
    REFUSED,
    viaProxy({ secret_key: q('not-the-secret') }),
    WITH_HEADER,
  ),
  storageCase(
    'endpoint is a web server answering 404',
    'daemon',
    /^loft: .*"loft-test" at http:\/\/127\.0\.0\.1:\d+/,
    async () => ({ endpoint: q(await webServer(404)) }),
  ),
  storageCase(
    'https against a plain-http port',
    'daemon',
    /^loft: cannot talk TLS to https:\/\/127\.0\.0\.1:\d+ .*: the endpoint may be plain http/,
    (e) => Promise.resolve({ endpoint: q(e.s3.endpoint.replace(/^http:/, 'https:')) }),
  ),
  {
    ...storageCase(
      'endpoint is a web server answering 200 to everything',
      'upload',
      /^loft: .*"loft-test" at http:\/\/127\.0\.0\.1:\d+/,
      async () => ({
        endpoint: q(await webServer(200)),
      }),
    ),
  },
];

describeBadInput(
  'unusable buckets: one line naming the endpoint, exit 4, the bucket untouched',
  'bad-storage',
  cases,
);
