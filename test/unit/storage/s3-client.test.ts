import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AbortedError, StorageError } from '../../../src/errors.js';
import { createS3Client, describeEndpoint, toStorageError } from '../../../src/storage/s3-client.js';

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

  test('a 500 after retries -> E_STORAGE', () => {
    const e = mapped(s3Error('InternalError', 500));
    assert.equal(e.code, 'E_STORAGE');
    assert.match(e.message, /InternalError, HTTP 500/);
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
