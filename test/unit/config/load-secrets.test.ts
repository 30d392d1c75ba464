import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, KeyError } from '../../../src/errors.js';
import { describeConfig } from '../../../src/config/schema.js';
import { FIXTURE_PUBLIC, load, rejection, useTempConfigs } from './temp-configs.js';

const { workdir, keyText } = useTempConfigs();

describe('credentials and headers from files and env', () => {
  test('inline credentials with a session token', async () => {
    const cwd = await workdir({
      'loft.toml': '[s3]\nbucket="b"\naccess_key="A"\nsecret_key="S"\nsession_token="T"\n',
    });
    const { config } = await load(cwd);
    assert.ok(config.storage.kind === 's3');
    assert.deepEqual(config.storage.s3.credentials, {
      accessKeyId: 'A',
      secretAccessKey: 'S',
      sessionToken: 'T',
    });
  });

  test('inline credentials in a file others can read give a warning; *_file does not', async () => {
    const cwd = await workdir({ 'loft.toml': '[s3]\nbucket="b"\naccess_key="A"\nsecret_key="S"\n' });
    assert.deepEqual((await load(cwd)).warnings, []);
    await chmod(join(cwd, 'loft.toml'), 0o644);
    assert.deepEqual((await load(cwd)).warnings, [
      `${join(cwd, 'loft.toml')} holds S3 credentials and is accessible by group or others (mode 0644); ` +
        'run chmod 600 on it or use access_key_file/secret_key_file',
    ]);
    const viaFiles = await workdir({
      'loft.toml': '[s3]\nbucket="b"\naccess_key_file="a"\nsecret_key_file="s"\n',
      a: 'A',
      s: 'S',
    });
    await chmod(join(viaFiles, 'loft.toml'), 0o644);
    assert.deepEqual((await load(viaFiles)).warnings, []);
  });

  test('a missing or empty secret file names the key and the path', async () => {
    const cwd = await workdir({
      'loft.toml': '[s3]\nbucket="b"\naccess_key_file="/nonexistent/ak"\nsecret_key="S"\n',
    });
    assert.equal(
      await rejection(load(cwd)),
      's3.access_key_file: cannot read /nonexistent/ak (no such file)',
    );
    const cwd2 = await workdir({
      'loft.toml': '[s3]\nbucket="b"\naccess_key="A"\nsecret_key_file="sk"\n',
      sk: '\n',
    });
    assert.equal(await rejection(load(cwd2)), `s3.secret_key_file: the file ${join(cwd2, 'sk')} is empty`);
  });

  test('extra headers: env > file > inline, case-insensitive', async () => {
    const cwd = await workdir({
      'loft.toml':
        '[s3]\nbucket="b"\n[s3.extra_headers]\n"CF-Access-Client-Id"="inline-id"\n"X-Inline"="i"\n' +
        '[s3.extra_headers_file]\n"cf-access-client-id"="id.txt"\n"CF-Access-Client-Secret"="secret.txt"\n',
      'id.txt': 'file-id\n',
      'secret.txt': 'file-secret\n',
    });
    const env = { LOFT_EXTRA_HEADER_CF_ACCESS_CLIENT_SECRET: 'env-secret' };
    const { config } = await load(cwd, { env });
    assert.ok(config.storage.kind === 's3');
    assert.deepEqual(config.storage.s3.extraHeaders, {
      'cf-access-client-id': 'file-id',
      'cf-access-client-secret': 'env-secret',
      'x-inline': 'i',
    });
  });

  test('a missing header file names the key and the path', async () => {
    const cwd = await workdir({ 'loft.toml': '[s3]\nbucket="b"\n[s3.extra_headers_file]\nX-A="gone"\n' });
    assert.equal(
      await rejection(load(cwd)),
      `s3.extra_headers_file.X-A: cannot read ${join(cwd, 'gone')} (no such file)`,
    );
  });

  test('LOFT_EXTRA_HEADER_* with a local cache is a warning', async () => {
    const cwd = await workdir();
    const { warnings } = await load(cwd, { env: { LOFT_EXTRA_HEADER_X: 'v' } });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /LOFT_EXTRA_HEADER_\* environment variables are ignored/);
  });
});

describe('secrets never reach a message', () => {
  const SECRETS = [
    'AKIA-LEAK-1',
    'SK-LEAK-2',
    'TOKEN-LEAK-3',
    'HDR-LEAK-4',
    'HDRFILE-LEAK-5',
    'ENVHDR-LEAK-6',
  ];
  test('errors and warnings from many bad configurations contain none of the secrets used', async () => {
    const seed = () => keyText().slice(keyText().indexOf(':') + 1, keyText().indexOf(':') + 30);
    const cases: Array<[Record<string, string>, NodeJS.ProcessEnv]> = [
      [{ 'loft.toml': '[s3]\nbucket="b"\naccess_key="AKIA-LEAK-1"\n' }, {}],
      [{ 'loft.toml': '[s3]\nbucket="b"\nsecret_key="SK-LEAK-2"\nsession_token="TOKEN-LEAK-3"\n' }, {}],
      [
        {
          'loft.toml':
            '[s3]\nbucket="b"\naccess_key="AKIA-LEAK-1"\naccess_key_file="f"\nsecret_key="SK-LEAK-2"\n',
          f: 'x',
        },
        {},
      ],
      [{ 'loft.toml': '[s3]\nbucket=""\naccess_key=["AKIA-LEAK-1"]\nsecret_key=1\n' }, {}],
      [{ 'loft.toml': '[s3]\nbucket="b"\nsecret_key = "SK-LEAK-2\n' }, {}],
      [{ 'loft.toml': '[s3]\nbucket="b"\n[s3.extra_headers]\n"X-A"="HDR-LEAK-4\\r\\nX: y"\n' }, {}],
      [{ 'loft.toml': '[s3]\nbucket="b"\n[s3.extra_headers]\n"bad name"="HDR-LEAK-4"\n' }, {}],
      [
        {
          'loft.toml': '[s3]\nbucket="b"\n[s3.extra_headers_file]\n"Authorization"="h"\n',
          h: 'HDRFILE-LEAK-5',
        },
        {},
      ],
      [{ 'loft.toml': '[s3]\nbucket="b"\n' }, { LOFT_EXTRA_HEADER_: 'ENVHDR-LEAK-6' }],
      [{ 'loft.toml': '[s3]\nbucket="b"\n' }, { LOFT_EXTRA_HEADER_X_A: 'ENVHDR-LEAK-6\nX-B: 1' }],
      [{ 'loft.toml': '[local]\npath="c"\n' }, { LOFT_EXTRA_HEADER_X_A: 'ENVHDR-LEAK-6' }],
      [{ 'loft.toml': '[s3]\nbucket="b"\nendpoint="https://u:SK-LEAK-2@h"\n' }, {}],
      [
        {
          'loft.toml': '[local]\npath="c"\n[loft]\nsigning_key_path="k"\nsigning_key_name="x"\n',
          k: keyText(),
        },
        {},
      ],
      [
        { 'loft.toml': '[local]\npath="c"\n[loft]\nsigning_key_path="k"\n', k: `${keyText()}\nextra line` },
        {},
      ],
      [{ 'loft.toml': '[local]\npath="c"\n[loft]\nsigning_key_path="k"\n', k: keyText().slice(0, 60) }, {}],
    ];
    const messages: string[] = [];
    for (const [files, env] of cases) {
      const cwd = await workdir(files);
      try {
        messages.push(...(await load(cwd, { env })).warnings);
      } catch (err) {
        assert.ok(err instanceof ConfigError || err instanceof KeyError, String(err));
        messages.push(err.message);
      }
    }
    assert.ok(messages.length >= cases.length, 'every case produced a message');
    for (const message of messages) {
      for (const secret of [...SECRETS, seed()]) {
        assert.ok(!message.includes(secret), `${JSON.stringify(message)} contains a secret`);
      }
    }
  });

  test('describeConfig omits credentials, header values and key material', async () => {
    const cwd = await workdir({
      'loft.toml':
        '[s3]\nbucket="b"\naccess_key="AKIA-LEAK-1"\nsecret_key="SK-LEAK-2"\nsession_token="TOKEN-LEAK-3"\n' +
        '[s3.extra_headers]\nX-A="HDR-LEAK-4"\n[loft]\nsigning_key_path="k"\n',
      k: keyText(),
    });
    const { config } = await load(cwd);
    const text = JSON.stringify(describeConfig(config));
    for (const secret of [...SECRETS, keyText().slice(keyText().indexOf(':') + 1), FIXTURE_PUBLIC]) {
      assert.ok(!text.includes(secret), `describeConfig shows ${secret}`);
    }
    const described = describeConfig(config) as {
      storage: { extraHeaders: unknown; bucket: string };
      signing: unknown;
    };
    assert.deepEqual(described.storage.extraHeaders, { 'x-a': '[redacted]' });
    assert.equal(described.storage.bucket, 'b');
    assert.deepEqual(described.signing, { keyName: 'loft-config-test-1', keyPath: join(cwd, 'k') });
  });
});
