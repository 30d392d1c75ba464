// The loft.toml the NixOS module renders (nix/config-toml.nix), written as pkgs.formats.toml would
// and loaded through loft's own config loader: the defaults are loft's, every option arrives in the
// expected Config field, the secrets arrive as systemd credentials and none is in the file,
// extraConfig overrides and removes keys, and settings that cannot work are assertion messages.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULTS } from '../../src/config/schema.js';
import { BUCKET, loadRendered, render, renderAll, s3Of, type Table } from '../helpers/nix-module.js';
import { requireNix } from '../helpers/nix-env.js';
import { makeNixKey } from '../helpers/signing-keys.js';
import { registerSecretWithEncodings } from '../helpers/test-secrets.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loft-nix-module-toml-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("the rendered loft.toml through loft's loader", () => {
  test("the defaults are loft's own", async (t) => {
    if (!requireNix(t)) return;
    const { settings, problems, credentials } = await render(BUCKET);
    assert.deepEqual({ problems, credentials }, { problems: [], credentials: [] });
    const { config: c, warnings } = await loadRendered(dir, settings);
    assert.deepEqual(warnings, []);
    assert.deepEqual(
      [
        s3Of(c).bucket,
        s3Of(c).region,
        s3Of(c).endpoint,
        s3Of(c).credentials,
        s3Of(c).extraHeaders,
        c.localCachePath,
      ],
      ['loft-test', DEFAULTS.region, 'http://127.0.0.1:3900', undefined, {}, '/var/lib/loft/cache.db'],
    );
    assert.deepEqual(
      [
        c.uploadThreads,
        c.scanOnStartup,
        c.populateCacheOnStartup,
        c.compression,
        c.useDiskForLargeNars,
        c.largeNarThresholdMb,
      ],
      [
        DEFAULTS.uploadThreads,
        DEFAULTS.scanOnStartup,
        DEFAULTS.populateCacheOnStartup,
        DEFAULTS.compression,
        DEFAULTS.useDiskForLargeNars,
        DEFAULTS.largeNarThresholdMb,
      ],
    );
    assert.deepEqual(
      [
        c.skipSignedByKeys,
        c.signingKey,
        c.prune.enabled,
        c.prune.retentionDays,
        c.prune.schedule,
        c.prune.maxSizeGb,
      ],
      [
        [...DEFAULTS.skipSignedByKeys],
        undefined,
        DEFAULTS.pruneEnabled,
        DEFAULTS.pruneRetentionDays,
        undefined,
        undefined,
      ],
    );
    assert.equal(c.prune.targetPercentage, DEFAULTS.pruneTargetPercentage);
  });

  test('every option set: the secrets arrive as credentials, and none is in the file', async (t) => {
    if (!requireNix(t)) return;
    const secrets = join(dir, 'secrets');
    const creds = join(dir, 'credentials');
    await mkdir(secrets, { mode: 0o700 });
    await mkdir(creds);
    const value = (kind: string) => {
      const v = `${kind}-${randomBytes(12).toString('hex')}`;
      registerSecretWithEncodings(`module test ${kind}`, v);
      return v;
    };
    const plain = {
      access: value('access-key'),
      secret: value('secret-key'),
      token: value('session-token'),
      header: value('header'),
    };
    for (const [name, v] of Object.entries(plain))
      await writeFile(join(secrets, name), `${v}\n`, { mode: 0o600 });
    const key = await makeNixKey(secrets, 'loft-module-test-1');
    const { settings, credentials, problems } = await render(
      {
        s3: {
          bucket: 'loft-test',
          region: 'eu-west-3',
          endpoint: 'http://127.0.0.1:3900',
          accessKeyFile: join(secrets, 'access'),
          secretKeyFile: join(secrets, 'secret'),
          sessionTokenFile: join(secrets, 'token'),
          extraHeaders: { 'X-Inline': 'inline-value' },
          extraHeadersFile: { 'CF-Access-Client-Secret': join(secrets, 'header') },
        },
        localCachePath: '/var/lib/loft/cache-test.db',
        uploadThreads: 7,
        scanOnStartup: false,
        populateCacheOnStartup: true,
        compression: 'xz',
        useDiskForLargeNars: false,
        largeNarThresholdMb: 2048,
        signingKeyPath: key.secretPath,
        signingKeyName: 'loft-module-test-1',
        skipSignedByKeys: ['only-this-1'],
        pruning: { enable: true, schedule: '00:00', retentionDays: 7, maxSizeGb: 100, targetPercentage: 70 },
      },
      { credentialsDir: creds },
    );
    assert.deepEqual(problems, []);
    assert.equal(credentials.length, 5);
    // What systemd does with LoadCredential=: a copy readable by the service alone.
    for (const c of credentials) {
      await copyFile(c.path, join(creds, c.id));
      await chmod(join(creds, c.id), 0o400);
    }
    const { config: c, warnings, text } = await loadRendered(dir, settings);
    assert.deepEqual(warnings, []);
    const keyLine = (await readFile(key.secretPath, 'utf8')).trim();
    const keyPayload = keyLine.slice(keyLine.indexOf(':') + 1);
    for (const v of [...Object.values(plain), keyPayload, secrets])
      assert.ok(!text.includes(v), 'a secret or its source is in loft.toml');
    const s3 = s3Of(c);
    assert.deepEqual(
      [s3.bucket, s3.region, s3.endpoint],
      ['loft-test', 'eu-west-3', 'http://127.0.0.1:3900'],
    );
    assert.deepEqual(s3.credentials, {
      accessKeyId: plain.access,
      secretAccessKey: plain.secret,
      sessionToken: plain.token,
    });
    assert.deepEqual(s3.extraHeaders, {
      'x-inline': 'inline-value',
      'cf-access-client-secret': plain.header,
    });
    assert.deepEqual(
      [
        c.localCachePath,
        c.uploadThreads,
        c.scanOnStartup,
        c.populateCacheOnStartup,
        c.compression,
        c.useDiskForLargeNars,
        c.largeNarThresholdMb,
      ],
      ['/var/lib/loft/cache-test.db', 7, false, true, 'xz', false, 2048],
    );
    assert.deepEqual(
      [c.signingKey?.name, c.signingKeyPath, c.skipSignedByKeys],
      ['loft-module-test-1', join(creds, 'signing-key'), ['only-this-1']],
    );
    assert.deepEqual(c.prune, {
      enabled: true,
      schedule: '00:00',
      retentionDays: 7,
      maxSizeGb: 100,
      targetPercentage: 70,
      orphanGraceHours: DEFAULTS.pruneOrphanGraceHours,
      graceHours: DEFAULTS.pruneGraceHours,
    });
  });

  test('extraConfig overrides options, adds keys, and removes a key with null', async (t) => {
    if (!requireNix(t)) return;
    const { settings } = await render({
      ...BUCKET,
      uploadThreads: 5,
      compression: 'xz',
      extraConfig: {
        loft: { upload_threads: 3, compression: null, priority: 45 },
        s3: { prefix: 'caches/main' },
      },
    });
    const { config: c } = await loadRendered(dir, settings);
    assert.deepEqual(
      [c.uploadThreads, c.compression, c.priority, s3Of(c).prefix],
      [3, DEFAULTS.compression, 45, 'caches/main/'],
    );
  });

  test('settings that cannot work are assertion messages', async (t) => {
    if (!requireNix(t)) return;
    const cases: Array<[Table, RegExp]> = [
      [
        { s3: { accessKeyFile: '/nix/store/abc-key', secretKeyFile: '/run/s' } },
        /s3\.accessKeyFile points into the Nix store/,
      ],
      [{ s3: { accessKeyFile: '/run/a' } }, /accessKeyFile and s3\.secretKeyFile go together/],
      [{ s3: { sessionTokenFile: '/run/t' } }, /sessionTokenFile needs/],
      [{ localCachePath: '/srv/loft/cache.db' }, /localCachePath must be inside \/var\/lib\/loft/],
      [{ extraConfig: { loft: { local_cache_path: null } } }, /localCachePath must be inside/],
      [{ signingKeyName: 'k-1' }, /signingKeyName is set without signingKeyPath/],
    ];
    const rendered = await renderAll(
      cases.map(([v]) => ({ ...v, s3: { ...BUCKET.s3, ...(v.s3 as Table | undefined) } })),
    );
    cases.forEach(([, pattern], i) =>
      assert.equal(
        rendered[i]!.problems.filter((p) => pattern.test(p)).length,
        1,
        `${pattern}: ${JSON.stringify(rendered[i]!.problems)}`,
      ),
    );
  });
});
