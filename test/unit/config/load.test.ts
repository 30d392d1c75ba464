import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HTTP_KEYS, LOCAL_KEYS, LOFT_KEYS, S3_KEYS } from '../../../src/config/schema.js';
import { targetDigest } from '../../../src/config/storage-target.js';
import { uncomment, type ExampleSetting } from './example-config.js';
import { load, rejection, useTempConfigs } from './temp-configs.js';

const EXAMPLE = fileURLToPath(new URL('../../../loft.toml.example', import.meta.url));
const { workdir } = useTempConfigs();

describe('which file', () => {
  test('no loft.toml and no --config: the embedded default (local cache in cwd)', async () => {
    const cwd = await workdir();
    const { config, warnings } = await load(cwd, { debug: true });
    assert.equal(config.configPath, undefined);
    assert.deepEqual(config.storage, { kind: 'local', path: join(cwd, 'loft-cache') });
    const digest = targetDigest(`file://${join(cwd, 'loft-cache')}`);
    assert.equal(config.localCachePath, `/home/t/.local/state/loft/cache-${digest}.db`);
    assert.equal(config.debug, true);
    assert.deepEqual(warnings, []);
  });

  test('./loft.toml is read when present', async () => {
    const cwd = await workdir({ 'loft.toml': '[local]\npath = "c"\n[loft]\nupload_threads = 2\n' });
    const { config } = await load(cwd);
    assert.equal(config.configPath, join(cwd, 'loft.toml'));
    assert.deepEqual(config.storage, { kind: 'local', path: join(cwd, 'c') });
    assert.equal(config.uploadThreads, 2);
  });

  test('an explicit file that is missing is an error', async () => {
    const cwd = await workdir();
    const message = await rejection(load(cwd, { path: 'nope.toml', explicit: true }));
    assert.equal(message, `config file ${join(cwd, 'nope.toml')} not found`);
  });

  test('a default-named path that is a directory is an error, not the default', async () => {
    const cwd = await workdir();
    await mkdir(join(cwd, 'loft.toml'));
    assert.match(await rejection(load(cwd)), /cannot read config file .*loft\.toml \(EISDIR\)/);
  });

  test('relative paths resolve against the config file directory, not cwd', async () => {
    const cwd = await workdir({
      'etc/loft.toml':
        '[s3]\nbucket="b"\naccess_key_file="ak"\nsecret_key_file="sk"\n[loft]\nlocal_cache_path="db/c.db"\n',
      'etc/ak': 'AK-FROM-FILE\n',
      'etc/sk': '  SK-FROM-FILE  \n\n',
    });
    const { config } = await load(cwd, { path: 'etc/loft.toml', explicit: true });
    assert.equal(config.localCachePath, join(cwd, 'etc', 'db', 'c.db'));
    assert.ok(config.storage.kind === 's3');
    assert.deepEqual(config.storage.s3.credentials, {
      accessKeyId: 'AK-FROM-FILE',
      secretAccessKey: 'SK-FROM-FILE',
    });
  });

  test('malformed TOML: file, line and column, without echoing the line', async () => {
    const cwd = await workdir({
      'loft.toml': '[s3]\nbucket = "b"\nsecret_key = "TOML-SECRET-1\naccess_key = "x"\n',
    });
    const message = await rejection(load(cwd));
    assert.match(message, new RegExp(`^${join(cwd, 'loft.toml')}:3:\\d+: invalid TOML: `));
    assert.ok(!message.includes('TOML-SECRET-1'), message);
  });
});

describe('loft.toml.example', () => {
  test('documents every key', async () => {
    const text = await readFile(EXAMPLE, 'utf8');
    const tables = new Set(['extra_headers', 'extra_headers_file']);
    for (const key of [...S3_KEYS, ...LOFT_KEYS, ...LOCAL_KEYS, ...HTTP_KEYS].filter((k) => !tables.has(k))) {
      assert.ok(new RegExp(`^(# )?${key} = `, 'm').test(text), `${key} is missing from loft.toml.example`);
    }
    for (const table of [
      '[s3]',
      '[s3.extra_headers]',
      '[s3.extra_headers_file]',
      '[local]',
      '[http]',
      '[loft]',
    ]) {
      assert.ok(text.includes(table), table);
    }
  });

  // A user copies the file and uncomments lines: these tests do the same, line by line, and load
  // the result with loft's own loader.
  const uncommented = async (pick: (s: ExampleSetting) => boolean): Promise<string> =>
    uncomment(await readFile(EXAMPLE, 'utf8'), pick);
  const target = (table: string, key: string) => (s: ExampleSetting) =>
    s.table === table && (s.key === undefined || s.key === key);
  const loadText = async (text: string) => {
    const cwd = await workdir({ 'loft.toml': text });
    return load(cwd);
  };

  test('as shipped it names no cache, and loading it says to choose one', async () => {
    const message = await rejection(loadText(await readFile(EXAMPLE, 'utf8')));
    assert.match(message, /no \[s3\], \[local\] or \[http\] table: say where the cache is/);
  });

  test('[local] uncommented, [s3] left commented out: a working local cache', async () => {
    const { config, warnings } = await loadText(await uncommented(target('local', 'path')));
    assert.deepEqual(config.storage, { kind: 'local', path: '/var/cache/loft' });
    assert.deepEqual(warnings, []);
  });

  test('[s3] uncommented, [local] left commented out: a working S3 cache', async () => {
    const { config, warnings } = await loadText(await uncommented(target('s3', 'bucket')));
    assert.ok(config.storage.kind === 's3');
    assert.equal(config.storage.s3.bucket, 'my-nix-cache');
    assert.deepEqual(config.storage.s3.extraHeaders, {});
    assert.deepEqual(warnings, []);
  });

  test('both targets uncommented: the one-target rule names both tables', async () => {
    const both = await uncommented((s) => target('s3', 'bucket')(s) || target('local', 'path')(s));
    assert.match(await rejection(loadText(both)), /\[s3\] and \[local\] are both present/);
  });

  test('every value shown commented and not marked as an example is the default', async () => {
    // [http]'s own keys are checked below: uncommented here they would land in [s3].
    const text = await uncommented(
      (s) => target('s3', 'bucket')(s) || (s.key !== undefined && !s.example && s.table !== 'http'),
    );
    assert.ok(/^part_size_mb = \d+$/m.test(text) && /^compression_level = \d+$/m.test(text), text);
    const fromExample = await loadText(text);
    const minimal = await loadText('[s3]\nbucket = "my-nix-cache"\n');
    assert.deepEqual(fromExample.warnings, []);
    assert.deepEqual(
      { ...fromExample.config, configPath: 'x', localCachePath: 'x' },
      { ...minimal.config, configPath: 'x', localCachePath: 'x' },
    );
  });

  test('[http] uncommented with its url: its values shown commented are its defaults', async () => {
    const text = await uncommented(
      (s) => target('http', 'url')(s) || (s.table === 'http' && s.key !== undefined && !s.example),
    );
    assert.ok(/^max_attempts = \d+$/m.test(text), text);
    const fromExample = await loadText(text);
    const minimal = await loadText('[http]\nurl = "https://cache.example.org/nix"\n');
    assert.equal(fromExample.config.storage.kind, 'http');
    assert.deepEqual(fromExample.warnings, []);
    assert.deepEqual(
      { ...fromExample.config, configPath: 'x', localCachePath: 'x' },
      { ...minimal.config, configPath: 'x', localCachePath: 'x' },
    );
  });

  test("choosing xz alone keeps xz's own default level (6), not zstd's", async () => {
    const text = (await uncommented(target('local', 'path'))).replace(
      /^# compression = "zstd"$/m,
      'compression = "xz"',
    );
    const { config } = await loadText(text);
    assert.equal(config.compression, 'xz');
    assert.equal(config.compressionLevel, 6);
  });
});
