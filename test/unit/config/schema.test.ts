import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../src/errors.js';
import { defaultLocalCachePath, storeDirFromEnv, validateDocument } from '../../../src/config/schema.js';
import { targetDigest } from '../../../src/config/storage-target.js';
import { CTX, errorOf, NO_FILE, validate } from './schema-context.js';
import { defaultMemoryBudgetBytes } from '../../../src/memory-budget.js';

describe('defaults', () => {
  test('no config file gives every default and the embedded local cache in cwd', () => {
    const { config } = validateDocument({}, NO_FILE);
    assert.deepEqual(config, {
      storeDir: '/nix/store',
      storage: { kind: 'local', path: '/srv/work/loft-cache' },
      uploadThreads: 12,
      scanOnStartup: true,
      populateCacheOnStartup: false,
      localCachePath: `/home/alice/.local/state/loft/cache-${targetDigest('file:///srv/work/loft-cache')}.db`,
      compression: 'zstd',
      compressionLevel: 3,
      useDiskForLargeNars: true,
      largeNarThresholdMb: 1024,
      skipSignedByKeys: ['cache.nixos.org-1', 'nix-community.cachix.org-1'],
      uploadDerivations: false,
      priority: 30,
      prune: {
        enabled: false,
        retentionDays: 30,
        targetPercentage: 80,
        orphanGraceHours: 24,
        graceHours: 24,
      },
      publishRoots: [],
      freshStartAfterUploads: 5000,
      memoryBudgetBytes: defaultMemoryBudgetBytes(),
      extras: { uploadLogs: true, writeNarListing: false, indexDebugInfo: false, logCompression: 'none' },
      debug: false,
    });
  });

  test('a config file without [s3], [local] or [http] is an error, not a silent ./loft-cache', () => {
    for (const doc of [{}, { loft: { upload_threads: 4 } }, { loft: { s3: { bucket: 'misplaced' } } }]) {
      assert.throws(
        () => validateDocument(doc, CTX),
        (err: unknown) =>
          err instanceof ConfigError &&
          /^\/etc\/loft\/loft\.toml: .*no \[s3\], \[local\] or \[http\] table: say where the cache is/.test(
            err.message,
          ),
      );
    }
  });

  test('[s3] with only a bucket gets the S3 defaults and no credentials', () => {
    const v = validate('[s3]\nbucket = "cache"\n');
    assert.deepEqual(v.config.storage, {
      kind: 's3',
      s3: {
        bucket: 'cache',
        region: 'us-east-1',
        forcePathStyle: true,
        extraHeaders: {},
        partSizeMb: 8,
        maxAttempts: 6,
        requestTimeoutSecs: 300,
      },
    });
    assert.equal(v.credentials, undefined);
  });

  test('xz defaults to level 6, none to 0 and ignores compression_level', () => {
    assert.equal(validate('[loft]\ncompression = "xz"').config.compressionLevel, 6);
    const none = validate('[loft]\ncompression = "none"\ncompression_level = "whatever"');
    assert.equal(none.config.compressionLevel, 0);
  });

  test('local cache path: XDG_STATE_HOME, else HOME, else the home directory given; one file per target', () => {
    const t = 's3://b/@aws:us-east-1';
    const file = `cache-${targetDigest(t)}.db`;
    assert.match(file, /^cache-[0-9a-f]{16}\.db$/);
    assert.equal(defaultLocalCachePath({ XDG_STATE_HOME: '/st', HOME: '/h' }, '/x', t), `/st/loft/${file}`);
    assert.equal(
      defaultLocalCachePath({ XDG_STATE_HOME: 'rel', HOME: '/h' }, '/x', t),
      `/h/.local/state/loft/${file}`,
    );
    assert.equal(defaultLocalCachePath({}, '/x', t), `/x/.local/state/loft/${file}`);
    // Two ./loft-cache directories (the embedded default in two working directories) get two files.
    const a = validateDocument({}, { ...NO_FILE, cwd: '/srv/a' }).config.localCachePath;
    const b = validateDocument({}, { ...NO_FILE, cwd: '/srv/b' }).config.localCachePath;
    assert.notEqual(a, b);
  });

  test('store dir from NIX_STORE_DIR, trailing slash dropped; relative is an error', () => {
    assert.equal(storeDirFromEnv({}), '/nix/store');
    assert.equal(storeDirFromEnv({ NIX_STORE_DIR: '/opt/store/' }), '/opt/store');
    assert.equal(validate('', { env: { NIX_STORE_DIR: '/gnu/store' } }).config.storeDir, '/gnu/store');
    assert.match(
      errorOf('', { env: { NIX_STORE_DIR: 'store' } }),
      /NIX_STORE_DIR: expected an absolute path/,
    );
  });
});

describe('every key is read', () => {
  test('a file setting every key of [s3] and [loft]', () => {
    const v = validate(`
      [s3]
      bucket = "b1"
      region = "eu-central-1"
      endpoint = "https://s3.example.org:9000"
      access_key = "AKIDEXAMPLE"
      secret_key = "wJalrXUtnFEMI"
      session_token = "tok"
      force_path_style = false
      part_size_mb = 64
      max_attempts = 9
      request_timeout_secs = 45
      prefix = "/caches/main/"
      [s3.extra_headers]
      "CF-Access-Client-Id" = "id"
      [s3.extra_headers_file]
      "CF-Access-Client-Secret" = "secrets/cf"
      [loft]
      upload_threads = 3
      scan_on_startup = false
      populate_cache_on_startup = true
      local_cache_path = "state/cache.db"
      compression = "xz"
      compression_level = 9
      use_disk_for_large_nars = false
      large_nar_threshold_mb = 10
      signing_key_path = "keys/cache.sec"
      signing_key_name = "cache-1"
      skip_signed_by_keys = []
      upload_derivations = true
      priority = 41
      prune_enabled = true
      prune_retention_days = 7
      prune_max_size_gb = 2.5
      prune_target_percentage = 60
      prune_schedule = "03:30"
      prune_orphan_grace_hours = 0
      prune_grace_hours = 0.5
      publish_roots = ["/run/current-system"]
      upload_logs = false
      write_nar_listing = true
      index_debug_info = true
      log_compression = "zstd"
    `);
    const c = v.config;
    assert.deepEqual(c.storage, {
      kind: 's3',
      s3: {
        bucket: 'b1',
        region: 'eu-central-1',
        endpoint: 'https://s3.example.org:9000',
        forcePathStyle: false,
        extraHeaders: {},
        partSizeMb: 64,
        maxAttempts: 9,
        requestTimeoutSecs: 45,
        prefix: 'caches/main/',
      },
    });
    assert.deepEqual(v.credentials, {
      accessKey: { key: 's3.access_key', inline: 'AKIDEXAMPLE' },
      secretKey: { key: 's3.secret_key', inline: 'wJalrXUtnFEMI' },
      sessionToken: { key: 's3.session_token', inline: 'tok' },
    });
    assert.deepEqual(v.inlineHeaders, [
      { name: 'CF-Access-Client-Id', value: 'id', origin: 's3.extra_headers.CF-Access-Client-Id' },
    ]);
    assert.deepEqual(v.headerFiles, [
      {
        name: 'CF-Access-Client-Secret',
        path: '/etc/loft/secrets/cf',
        origin: 's3.extra_headers_file.CF-Access-Client-Secret',
      },
    ]);
    assert.equal(v.signingKeyName, 'cache-1');
    assert.equal(c.signingKeyPath, '/etc/loft/keys/cache.sec');
    assert.equal(c.localCachePath, '/etc/loft/state/cache.db');
    assert.deepEqual(
      [c.uploadThreads, c.scanOnStartup, c.populateCacheOnStartup, c.compression, c.compressionLevel],
      [3, false, true, 'xz', 9],
    );
    assert.deepEqual(
      [c.useDiskForLargeNars, c.largeNarThresholdMb, c.uploadDerivations, c.priority],
      [false, 10, true, 41],
    );
    assert.deepEqual(c.skipSignedByKeys, []);
    assert.deepEqual(c.extras, {
      uploadLogs: false,
      writeNarListing: true,
      indexDebugInfo: true,
      logCompression: 'zstd',
    });
    assert.deepEqual(c.prune, {
      enabled: true,
      retentionDays: 7,
      maxSizeGb: 2.5,
      targetPercentage: 60,
      schedule: '03:30',
      orphanGraceHours: 0,
      graceHours: 0.5,
    });
    assert.deepEqual(c.publishRoots, ['/run/current-system']);
  });

  test('*_file credentials resolve against the config directory', () => {
    const v = validate(
      '[s3]\nbucket="b"\naccess_key_file="a"\nsecret_key_file="/abs/s"\nsession_token_file="t"',
    );
    assert.deepEqual(v.credentials, {
      accessKey: { key: 's3.access_key_file', file: '/etc/loft/a' },
      secretKey: { key: 's3.secret_key_file', file: '/abs/s' },
      sessionToken: { key: 's3.session_token_file', file: '/etc/loft/t' },
    });
  });

  test('[local] path resolves against the config directory', () => {
    const v = validate('[local]\npath = "cache"');
    assert.deepEqual(v.config.storage, { kind: 'local', path: '/etc/loft/cache' });
  });

  test('the original Loft README example validates', () => {
    const v = validate(`
      [s3]
      bucket = "nix-cache"
      region = "us-east-1"
      endpoint = "http://172.16.1.50:31292"
      [s3.extra_headers]
      [loft]
      upload_threads = 12
      scan_on_startup = true
      local_cache_path = ".direnv/cache.db"
      compression = "zstd"
      use_disk_for_large_nars = true
      large_nar_threshold_mb = 1024
      signing_key_path = "/run/secrets/nix-signing-key"
      signing_key_name = "nix-cache"
      skip_signed_by_keys = ["cache.nixos.org-1", "nix-community.cachix.org-1"]
      prune_enabled = false
      prune_retention_days = 30
    `);
    assert.equal(v.config.localCachePath, '/etc/loft/.direnv/cache.db');
  });
});

describe('unknown keys are errors naming the dotted key', () => {
  test('typos get a suggestion; unknown tables and root keys are named; at most three are listed', () => {
    const message = errorOf(`
      top = 1
      [s3]
      bucket = "b"
      regoin = "x"
      [loft]
      signing_key_pth = "key.sec"
      some_new_feature_flag = true
      [extra]
      a = 1
    `);
    assert.match(
      message,
      /^\/etc\/loft\/loft\.toml: unknown key top \(did you mean http\?\): fix its name or remove it/,
    );
    assert.match(message, /unknown key extra: /);
    assert.match(message, /unknown key s3\.regoin \(did you mean s3\.region\?\): /);
    assert.match(message, /; and 2 more$/);
    assert.match(
      errorOf('[s3]\nbucket = "b"\n[loft]\nsigning_key_pth = "k"'),
      /unknown key loft\.signing_key_pth \(did you mean loft\.signing_key_path\?\): fix its name or remove it \(loft\.toml\.example lists every key\)/,
    );
  });

  test('[local] with an unknown key', () => {
    assert.match(
      errorOf('[local]\npath = "/c"\npaht = "x"'),
      /unknown key local\.paht \(did you mean local\.path\?\)/,
    );
  });
});
