import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { AbortedError, StorageError } from '../../../src/errors.js';
import { BUFFERED_BODY_MAX_BYTES, createS3Client } from '../../../src/storage/s3-client.js';
import { describeEndpoint } from '../../../src/storage/s3-description.js';
import { toStorageError } from '../../../src/storage/s3-errors.js';

const ctx = { operation: 'put nar/a.nar.zst', bucket: 'cache', where: 'https://s3.example.org' };
const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

function s3Error(name: string, status: number): Error {
  // The SDK's message may quote request data; it must never reach ours.
  return Object.assign(new Error(`${name}: request with ${secret}`), {
    name,
    $metadata: { httpStatusCode: status },
  });
}

function mapped(err: unknown): StorageError {
  const out = toStorageError(err, ctx);
  assert.ok(out instanceof StorageError, `expected a StorageError, got ${out.name}`);
  assert.ok(!out.message.includes(secret), 'message leaks request data');
  assert.ok(!out.message.includes('\n'), 'message is not one line');
  assert.ok(out.message.includes('"cache"'), 'message names the bucket');
  assert.equal(out.cause, err);
  return out;
}

describe('toStorageError', () => {
  test('NoSuchBucket -> E_STORAGE_NO_BUCKET', () => {
    const e = mapped(s3Error('NoSuchBucket', 404));
    assert.equal(e.code, 'E_STORAGE_NO_BUCKET');
    assert.match(e.message, /does not exist/);
  });

  for (const code of ['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied']) {
    test(`${code} -> E_STORAGE_AUTH`, () => {
      const e = mapped(s3Error(code, 403));
      assert.equal(e.code, 'E_STORAGE_AUTH');
      assert.ok(e.message.includes(code));
      assert.match(e.message, /check the access key id, secret key/);
    });
  }

  test('a bare 403 (HEAD has no body) -> E_STORAGE_AUTH', () => {
    assert.equal(mapped(s3Error('403', 403)).code, 'E_STORAGE_AUTH');
  });

  test('no credentials anywhere in the default chain -> E_STORAGE_AUTH', () => {
    const err = Object.assign(new Error('Could not load credentials from any providers'), {
      name: 'CredentialsProviderError',
    });
    assert.equal(mapped(err).code, 'E_STORAGE_AUTH');
  });

  for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'ECONNRESET', 'ETIMEDOUT']) {
    test(`${code} -> E_STORAGE_UNREACHABLE naming the endpoint`, () => {
      const e = mapped(Object.assign(new Error(`connect ${code} ${secret}`), { code }));
      assert.equal(e.code, 'E_STORAGE_UNREACHABLE');
      assert.ok(e.message.includes('https://s3.example.org'));
    });
  }

  test('a 500 after retries -> E_STORAGE naming the request and the status, transient', () => {
    const e = mapped(s3Error('InternalError', 500));
    assert.equal(e.code, 'E_STORAGE');
    assert.match(
      e.message,
      /^put nar\/a\.nar\.zst on bucket "cache" at https:\/\/s3\.example\.org got InternalError, HTTP 500: /,
    );
    assert.match(e.message, /try again later/);
    assert.equal(e.transient, true);
  });

  test('refusals are not transient; an unreachable endpoint is', () => {
    assert.equal(mapped(s3Error('NoSuchBucket', 404)).transient, false);
    assert.equal(mapped(s3Error('AccessDenied', 403)).transient, false);
    assert.equal(mapped(s3Error('UnknownError', 404)).transient, false);
    assert.equal(mapped(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })).transient, true);
  });

  test('https:// against a plain-http port (EPROTO) says the endpoint may be http', () => {
    const err = Object.assign(new Error(`write EPROTO ssl3_get_record:wrong version number ${secret}`), {
      code: 'EPROTO',
    });
    const e = mapped(err);
    assert.equal(e.code, 'E_STORAGE_TLS');
    assert.match(e.message, /the endpoint may be plain http/);
    assert.equal(e.transient, false);
  });

  test('an error without status or code points at --debug, not at a debug log that may not exist', () => {
    const e = mapped(new Error(`odd ${secret}`));
    assert.match(e.message, /rerun with --debug/);
    assert.doesNotMatch(e.message, /debug log/);
  });

  test('AbortError -> AbortedError', () => {
    const out = toStorageError(Object.assign(new Error('aborted'), { name: 'AbortError' }), ctx);
    assert.ok(out instanceof AbortedError);
  });

  test('an error that is already a StorageError passes unchanged', () => {
    const e = new StorageError('x', { code: 'E_STORAGE_AUTH' });
    assert.equal(toStorageError(e, ctx), e);
  });
});

describe('describeEndpoint', () => {
  test('keeps scheme, host, port and path; drops userinfo and query', () => {
    assert.equal(
      describeEndpoint('https://user:pw@host.example:9000/base?token=t', 'x'),
      'https://host.example:9000/base',
    );
    assert.equal(describeEndpoint('http://127.0.0.1:4566/', 'x'), 'http://127.0.0.1:4566');
  });

  test('AWS itself when there is no endpoint', () => {
    assert.equal(describeEndpoint(undefined, 'eu-west-1'), 'AWS S3 (eu-west-1)');
  });

  test('does not echo an unparsable endpoint', () => {
    assert.ok(!describeEndpoint('not a url with secret', 'x').includes('secret'));
  });
});

describe('createS3Client', () => {
  test('turns off checksum-by-default and registers the extra-headers middleware after signing', async () => {
    const client = createS3Client({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9',
      forcePathStyle: true,
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      extraHeaders: { 'X-Test': 'v' },
    });
    try {
      assert.equal(await client.config.requestChecksumCalculation(), 'WHEN_REQUIRED');
      assert.equal(await client.config.responseChecksumValidation(), 'WHEN_REQUIRED');
      const names = client.middlewareStack.identify();
      const signing = names.findIndex((n) => n.startsWith('httpSigningMiddleware'));
      const ours = names.findIndex((n) => n.startsWith('loftExtraHeadersMiddleware'));
      assert.ok(signing >= 0 && ours > signing, `order was: ${names.join(', ')}`);
    } finally {
      client.destroy();
    }
  });

  test('adds no middleware when there are no extra headers', () => {
    const client = createS3Client({ region: 'us-east-1', forcePathStyle: false, extraHeaders: {} });
    try {
      assert.ok(!client.middlewareStack.identify().some((n) => n.startsWith('loftExtraHeadersMiddleware')));
    } finally {
      client.destroy();
    }
  });
});

/**
 * A local HTTP server standing in for S3: `answer` gets the request number (1, 2, ...) and handles
 * the request; every request is counted.
 */
async function fakeS3(
  answer: (n: number, req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ endpoint: string; count: () => number; close: () => Promise<void> }> {
  let n = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => answer(++n, req, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    count: () => n,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function clientFor(endpoint: string, requestTimeoutMs = 5000) {
  return createS3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    extraHeaders: {},
    maxAttempts: 3,
    retryBaseDelayMs: 1,
    requestTimeoutMs,
  });
}

async function getBody(client: ReturnType<typeof createS3Client>): Promise<Buffer> {
  const out = await client.send(new GetObjectCommand({ Bucket: 'b', Key: 'nix-cache-info' }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

const BODY = Buffer.from('StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n');

// A client that misses a fault would wait forever: each test has a deadline so it fails instead.
const deadline = { timeout: 5_000 };

describe('createS3Client against a flaky server', () => {
  test(
    'a GetObject body cut short is retried inside the SDK, not handed to the caller',
    deadline,
    async (t) => {
      const server = await fakeS3((n, _req, res) => {
        res.writeHead(200, { 'content-length': String(BODY.length) });
        if (n === 1) res.write(BODY.subarray(0, 10), () => res.socket?.destroy());
        else res.end(BODY);
      });
      t.after(() => server.close());
      const client = clientFor(server.endpoint);
      t.after(() => client.destroy());
      assert.deepEqual(await getBody(client), BODY);
      assert.equal(server.count(), 2);
    },
  );

  test('a body that stalls midway is dropped after the idle timeout and retried', deadline, async (t) => {
    const server = await fakeS3((n, _req, res) => {
      res.writeHead(200, { 'content-length': String(BODY.length) });
      if (n === 1) res.write(BODY.subarray(0, 10));
      else res.end(BODY);
    });
    t.after(() => server.close());
    const client = clientFor(server.endpoint, 300);
    t.after(() => client.destroy());
    assert.deepEqual(await getBody(client), BODY);
    assert.equal(server.count(), 2);
  });

  test('a server that never answers is dropped after the idle timeout and retried', deadline, async (t) => {
    const server = await fakeS3((n, _req, res) => {
      if (n > 1) res.writeHead(200, { 'content-length': '0' }).end();
    });
    t.after(() => server.close());
    const client = clientFor(server.endpoint, 300);
    t.after(() => client.destroy());
    await client.send(new PutObjectCommand({ Bucket: 'b', Key: 'x.narinfo', Body: 'x' }));
    assert.equal(server.count(), 2);
  });

  test('the timeout is an idle one: an answer that keeps trickling in outlasts it', deadline, async (t) => {
    const server = await fakeS3((_n, _req, res) => {
      res.writeHead(200, { 'content-length': String(BODY.length) });
      let sent = 0;
      const timer = setInterval(() => {
        res.write(BODY.subarray(sent, sent + 6));
        sent += 6;
        if (sent >= BODY.length) {
          clearInterval(timer);
          res.end();
        }
      }, 60);
    });
    t.after(() => server.close());
    const client = clientFor(server.endpoint, 250);
    t.after(() => client.destroy());
    const started = Date.now();
    assert.deepEqual(await getBody(client), BODY);
    assert.ok(Date.now() - started > 250, 'the answer took longer than the timeout');
    assert.equal(server.count(), 1);
  });

  test('bodies above the buffering limit stay streams', deadline, async (t) => {
    const big = Buffer.alloc(BUFFERED_BODY_MAX_BYTES + 1, 1);
    const server = await fakeS3((_n, _req, res) => {
      res.writeHead(200, { 'content-length': String(big.length) }).end(big);
    });
    t.after(() => server.close());
    const client = clientFor(server.endpoint);
    t.after(() => client.destroy());
    const out = await client.send(new GetObjectCommand({ Bucket: 'b', Key: 'nar/big' }));
    assert.ok(out.Body instanceof IncomingMessage, 'the socket stream itself');
    assert.equal((await out.Body.transformToByteArray()).length, big.length);
  });
});
