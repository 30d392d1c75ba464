// The one line loft prints for each TLS failure of an https:// cache (src/storage/http-errors.ts):
// what to do, per certificate error Node reports and per 400 nginx gives without a client
// certificate. The integration test (http-nginx-tls) sees the common cases against a real nginx.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HttpStatusError,
  httpStorageError,
  type HttpFailureContext,
} from '../../../src/storage/http-errors.js';

const ctx = (tls: { caFile: boolean; clientCert: boolean }): HttpFailureContext => ({
  operation: 'read nix-cache-info',
  where: 'https://cache.example.org/nix',
  tls,
});
const tlsError = (code: string) => Object.assign(new Error(`tls failed: ${code}`), { code });

test('a certificate no trusted CA signed: set ca_file; with ca_file set: it is not that CA', () => {
  const none = httpStorageError(
    tlsError('UNABLE_TO_VERIFY_LEAF_SIGNATURE'),
    ctx({ caFile: false, clientCert: false }),
  );
  assert.equal(none.code, 'E_STORAGE_TLS');
  assert.match(none.message, /not signed by a CA this machine trusts; set http\.ca_file/);
  const set = httpStorageError(
    tlsError('SELF_SIGNED_CERT_IN_CHAIN'),
    ctx({ caFile: true, clientCert: false }),
  );
  assert.match(set.message, /not signed by a CA in http\.ca_file/);
});

test('a certificate for another host or out of its validity: the hint says so, not ca_file', () => {
  const name = httpStorageError(
    tlsError('ERR_TLS_CERT_ALTNAME_INVALID'),
    ctx({ caFile: true, clientCert: false }),
  );
  assert.match(name.message, /does not name the host of http\.url/);
  assert.doesNotMatch(name.message, /set .*ca_file/);
  const expired = httpStorageError(tlsError('CERT_HAS_EXPIRED'), ctx({ caFile: false, clientCert: false }));
  assert.match(expired.message, /renew the server certificate, or check this machine's clock/);
});

test("nginx's 400 without a client certificate asks for client_cert_file; a refused one says so", () => {
  const html = '<html><center>No required SSL certificate was sent</center></html>';
  const missing = httpStorageError(
    new HttpStatusError(400, 'GET', 'nix-cache-info', html),
    ctx({ caFile: true, clientCert: false }),
  );
  assert.equal(missing.code, 'E_STORAGE_TLS');
  assert.match(
    missing.message,
    /requires a client certificate .*set http\.client_cert_file and http\.client_key_file/,
  );
  // A HEAD's 400 has no body: on https without a client certificate, the same reading.
  const head = httpStorageError(
    new HttpStatusError(400, 'HEAD', 'x.narinfo'),
    ctx({ caFile: false, clientCert: false }),
  );
  assert.match(head.message, /requires a client certificate/);
  const refused = httpStorageError(
    new HttpStatusError(400, 'GET', 'nix-cache-info', '<center>The SSL certificate error</center>'),
    ctx({ caFile: true, clientCert: true }),
  );
  assert.match(refused.message, /refused loft's client certificate/);
});

test('a 400 over plain http, or with a client certificate and no TLS text, is not about certificates', () => {
  const plain = httpStorageError(new HttpStatusError(400, 'HEAD', 'x.narinfo'), {
    operation: 'check x.narinfo',
    where: 'http://cache.example.org/nix',
  });
  assert.doesNotMatch(plain.message, /certificate/);
  const withCert = httpStorageError(
    new HttpStatusError(400, 'HEAD', 'x.narinfo'),
    ctx({ caFile: true, clientCert: true }),
  );
  assert.doesNotMatch(withCert.message, /certificate/);
});
