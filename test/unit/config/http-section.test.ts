// [http]: validation (one-line errors naming the key, never a credential) and the loader reading
// its files: the password byte for byte but one final newline, a token, a netrc, CA and client cert.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { storageTarget } from '../../../src/config/storage-target.js';
import { describeConfig } from '../../../src/config/schema.js';
import { errorOf } from './schema-context.js';
import { load, rejection, useTempConfigs } from './temp-configs.js';

const { workdir } = useTempConfigs();

const INVALID: Array<[string, string]> = [
  ['[http]\n', 'http.url: required in [http]'],
  ['[http]\nurl = "ftp://h/x"', 'http.url: expected an http:// or https:// URL, got "ftp://h/x"'],
  ['[http]\nurl = "https://h/x?a=1"', 'http.url: expected a URL without a query or fragment'],
  [
    '[http]\nurl = "https://h"\nuser = "u"',
    'http.password_file: missing; user and password_file go together',
  ],
  ['[http]\nurl = "https://h"\npassword_file = "p"', 'http.user: missing'],
  [
    '[http]\nurl = "https://h"\nuser = "u"\npassword_file = "p"\ntoken_file = "t"',
    'different ways to log in; keep one',
  ],
  ['[http]\nurl = "https://h"\ntoken_file = "t"\nnetrc_file = "n"', 'different ways to log in'],
  [
    '[http]\nurl = "https://h"\nuser = "a:b"\npassword_file = "p"',
    'http.user: expected a user name without ":"',
  ],
  ['[http]\nurl = "https://h"\nclient_cert_file = "c"', 'http.client_key_file: missing'],
  ['[http]\nurl = "https://h"\npassword = "x"', 'unknown key http.password'],
  ['[http]\nurl = "https://h"\nmax_attempts = 0', 'http.max_attempts: expected an integer from 1 to 20'],
  ['[http]\nurl = "https://h"\n[local]\npath = "/c"', '[local] and [http] are both present'],
  [
    '[s3]\nbucket = "b"\n[local]\npath = "/c"\n[http]\nurl = "https://h"',
    '[s3] and [local] and [http] are all present',
  ],
];

describe('[http] validation', () => {
  for (const [toml, fragment] of INVALID) {
    test(JSON.stringify(toml), () => {
      const message = errorOf(toml);
      assert.ok(message.includes(fragment), `${JSON.stringify(message)} lacks ${JSON.stringify(fragment)}`);
    });
  }

  test('a URL carrying a password is refused without echoing it', () => {
    const message = errorOf('[http]\nurl = "https://u:SECRET-PW-9@h/x"');
    assert.match(message, /http\.url: must not contain a user name or password/);
    assert.ok(!message.includes('SECRET-PW-9'), message);
  });
});

describe('[http] loading', () => {
  test('user + password_file: one final newline is dropped, every other byte kept; trailing slashes go', async () => {
    const cwd = await workdir({
      'loft.toml': '[http]\nurl = "https://cache.example.org/nix//"\nuser = "u"\npassword_file = "pw"\n',
      pw: ' pass word \n',
    });
    const { config } = await load(cwd);
    assert.ok(config.storage.kind === 'http');
    assert.equal(config.storage.http.url, 'https://cache.example.org/nix');
    assert.deepEqual(config.storage.http.auth, { kind: 'basic', user: 'u', password: ' pass word ' });
    assert.equal(storageTarget(config.storage), 'https://cache.example.org/nix');
    const described = JSON.stringify(describeConfig(config));
    assert.ok(!described.includes('pass word'), described);
  });

  test('a password file of two lines, or empty, is refused naming the key', async () => {
    for (const pw of ['a\nb\n', '\n']) {
      const cwd = await workdir({
        'loft.toml': '[http]\nurl = "https://h"\nuser = "u"\npassword_file = "pw"\n',
        pw,
      });
      assert.match(
        await rejection(load(cwd)),
        /^http\.password_file: the file .* (holds more than one line|is empty)/,
      );
    }
  });

  test('token_file is a Bearer token; netrc_file gives the entry for the host, or a warning', async () => {
    const token = await workdir({
      'loft.toml': '[http]\nurl = "https://h"\ntoken_file = "t"\n',
      t: 'tok-1\n',
    });
    const t = (await load(token)).config;
    assert.ok(t.storage.kind === 'http');
    assert.deepEqual(t.storage.http.auth, { kind: 'bearer', token: 'tok-1' });
    const netrc = await workdir({
      'loft.toml': '[http]\nurl = "https://cache.example.org:8443/x"\nnetrc_file = "n"\n',
      n: 'machine cache.example.org login bob password pw2\n',
    });
    const n = (await load(netrc)).config;
    assert.ok(n.storage.kind === 'http');
    assert.deepEqual(n.storage.http.auth, { kind: 'basic', user: 'bob', password: 'pw2' });
    const none = await workdir({
      'loft.toml': '[http]\nurl = "https://other"\nnetrc_file = "n"\n',
      n: 'machine x login a password b\n',
    });
    const result = await load(none);
    assert.match(result.warnings.join('\n'), /has no entry for other: requests go without credentials/);
  });

  // A usable client certificate and key need a CA made at test time: see the integration test
  // http-nginx-tls (no key material is committed). Here: PEM files of the wrong kind or unusable.
  test('ca_file and client certificate: PEM files of the right kind; extra headers merged', async () => {
    const cert = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const key = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';
    const cwd = await workdir({
      'loft.toml':
        '[http]\nurl = "https://h"\nca_file = "ca.pem"\n' +
        '[http.extra_headers]\nX-A = "1"\n[http.extra_headers_file]\nX-B = "b"\n',
      'ca.pem': cert,
      b: 'secret-b\n',
    });
    const { config } = await load(cwd);
    assert.ok(config.storage.kind === 'http');
    assert.equal(config.storage.http.ca, cert);
    assert.deepEqual(config.storage.http.extraHeaders, { 'x-a': '1', 'x-b': 'secret-b' });
    const unusable = await workdir({
      'loft.toml': '[http]\nurl = "https://h"\nclient_cert_file = "c.pem"\nclient_key_file = "k.pem"\n',
      'c.pem': cert,
      'k.pem': key,
    });
    assert.match(
      await rejection(load(unusable)),
      /^http\.client_cert_file, client_key_file: .*c\.pem and .*k\.pem are not a usable certificate and key \(ERR_OSSL_[A-Z0-9_]+\)$/,
    );
    const encrypted = await workdir({
      'loft.toml': '[http]\nurl = "https://h"\nclient_cert_file = "c.pem"\nclient_key_file = "k.pem"\n',
      'c.pem': cert,
      'k.pem': key.replaceAll('PRIVATE KEY', 'ENCRYPTED PRIVATE KEY'),
    });
    assert.match(await rejection(load(encrypted)), /^http\.client_key_file: .*k\.pem is encrypted/);
    const wrong = await workdir({
      'loft.toml': '[http]\nurl = "https://h"\nca_file = "k.pem"\n',
      'k.pem': key,
    });
    assert.match(await rejection(load(wrong)), /^http\.ca_file: .* is not a PEM file of the expected kind/);
  });
});
