import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../src/errors.js';
import { validateDocument } from '../../../src/config/schema.js';
import { CTX, errorOf } from './schema-context.js';

// Each row: TOML, then a fragment the single-line message must contain.
const INVALID: Array<[string, string]> = [
  ['[loft]\nupload_threads = "abc"', 'loft.upload_threads: expected an integer from 1 to 256, got "abc"'],
  ['[loft]\nupload_threads = 0', 'loft.upload_threads: expected an integer from 1 to 256, got 0'],
  ['[loft]\nupload_threads = 100000', 'loft.upload_threads: expected an integer from 1 to 256, got 100000'],
  ['[loft]\nupload_threads = 2.5', 'loft.upload_threads: expected an integer from 1 to 256, got 2.5'],
  ['[loft]\nupload_threads = -4', 'got -4'],
  ['[loft]\nscan_on_startup = "yes"', 'loft.scan_on_startup: expected true or false, got "yes"'],
  ['[loft]\npopulate_cache_on_startup = 1', 'loft.populate_cache_on_startup: expected true or false, got 1'],
  ['[loft]\ncompression = "gzip"', 'loft.compression: expected one of "zstd", "xz", "none", got "gzip"'],
  [
    '[loft]\ncompression = "zstd"\ncompression_level = 20',
    'loft.compression_level: expected an integer from 1 to 19, got 20',
  ],
  [
    '[loft]\ncompression = "zstd"\ncompression_level = 0',
    'loft.compression_level: expected an integer from 1 to 19, got 0',
  ],
  [
    '[loft]\ncompression = "xz"\ncompression_level = 10',
    'loft.compression_level: expected an integer from 0 to 9, got 10',
  ],
  ['[loft]\nlocal_cache_path = ""', 'loft.local_cache_path: expected a non-empty string, got ""'],
  ['[loft]\nlocal_cache_path = 5', 'loft.local_cache_path: expected a non-empty string, got 5'],
  ['[loft]\nuse_disk_for_large_nars = "true"', 'loft.use_disk_for_large_nars: expected true or false'],
  ['[loft]\nlarge_nar_threshold_mb = 0', 'loft.large_nar_threshold_mb: expected an integer from 1 to'],
  [
    '[loft]\nskip_signed_by_keys = "cache.nixos.org-1"',
    'loft.skip_signed_by_keys: expected an array of non-empty strings',
  ],
  [
    '[loft]\nskip_signed_by_keys = ["a", 1]',
    'loft.skip_signed_by_keys: expected an array of non-empty strings, got an array',
  ],
  ['[loft]\nskip_signed_by_keys = [""]', 'loft.skip_signed_by_keys: expected an array of non-empty strings'],
  ['[loft]\nupload_derivations = "no"', 'loft.upload_derivations: expected true or false'],
  ['[loft]\npriority = -1', 'loft.priority: expected an integer from 0 to 10000, got -1'],
  ['[loft]\nprune_enabled = 1', 'loft.prune_enabled: expected true or false, got 1'],
  [
    '[loft]\nprune_retention_days = 0',
    'loft.prune_retention_days: expected an integer from 1 to 36500, got 0',
  ],
  [
    '[loft]\nprune_retention_days = "30d"',
    'loft.prune_retention_days: expected an integer from 1 to 36500, got "30d"',
  ],
  ['[loft]\nprune_max_size_gb = 0', 'loft.prune_max_size_gb: expected a number greater than 0'],
  ['[loft]\nprune_max_size_gb = -5', 'loft.prune_max_size_gb: expected a number greater than 0'],
  [
    '[loft]\nprune_target_percentage = 100',
    'loft.prune_target_percentage: expected an integer from 1 to 99, got 100',
  ],
  [
    '[loft]\nprune_orphan_grace_hours = -1',
    'loft.prune_orphan_grace_hours: expected an integer from 0 to 8760, got -1',
  ],
  [
    '[loft]\nprune_grace_hours = -0.5',
    'loft.prune_grace_hours: expected a number of hours from 0 to 8760 (fractions allowed), got -0.5',
  ],
  [
    '[loft]\npublish_roots = ["result"]',
    'loft.publish_roots: expected a list of absolute paths, got "result"',
  ],
  ['[loft]\nprune_schedule = "daily"', 'loft.prune_schedule: expected an interval like "24h"'],
  ['[loft]\nprune_schedule = "24:00"', 'got "24:00"'],
  ['[loft]\nprune_schedule = "0h"', 'got "0h"'],
  ['[loft]\nprune_schedule = 24', 'loft.prune_schedule: expected a string, got 24'],
  ['[loft]\nsigning_key_name = "cache-1"', 'loft.signing_key_name: set without loft.signing_key_path'],
  ['[loft]\nsigning_key_path = ""', 'loft.signing_key_path: expected a non-empty string'],
  ['loft = 3', 'loft: expected a table, got 3'],
  ['s3 = "bucket"', 's3: expected a table, got "bucket"'],
  ['[s3]\nregion = "us-east-1"', 's3.bucket: required in [s3]'],
  ['[s3]\nbucket = ""', 's3.bucket: expected a non-empty string, got ""'],
  ['[s3]\nbucket = "a/b"', 's3.bucket: expected a bucket name without spaces or slashes, got "a/b"'],
  ['[s3]\nbucket = 7', 's3.bucket: expected a non-empty string, got 7'],
  ['[s3]\nbucket = "b"\nregion = ""', 's3.region: expected a non-empty string'],
  [
    '[s3]\nbucket = "b"\nendpoint = "s3.example.org"',
    's3.endpoint: expected an http:// or https:// URL, got "s3.example.org"',
  ],
  [
    '[s3]\nbucket = "b"\nendpoint = "ftp://s3.example.org"',
    's3.endpoint: expected an http:// or https:// URL, got "ftp://',
  ],
  ['[s3]\nbucket = "b"\nendpoint = "not a url"', 's3.endpoint: expected an http:// or https:// URL'],
  ['[s3]\nbucket = "b"\nforce_path_style = "yes"', 's3.force_path_style: expected true or false'],
  ['[s3]\nbucket = "b"\npart_size_mb = 4', 's3.part_size_mb: expected an integer from 5 to 5120, got 4'],
  ['[s3]\nbucket = "b"\nmax_attempts = 0', 's3.max_attempts: expected an integer from 1 to 20, got 0'],
  [
    '[s3]\nbucket = "b"\nrequest_timeout_secs = 0',
    's3.request_timeout_secs: expected an integer from 1 to 3600, got 0',
  ],
  ['[s3]\nbucket = "b"\nprefix = "a/../b"', 's3.prefix: expected a folder path'],
  [
    '[s3]\nbucket = "b"\npart_size_mb = 6000',
    's3.part_size_mb: expected an integer from 5 to 5120, got 6000',
  ],
  ['[s3]\nbucket = "b"\naccess_key = "AK"', 's3.secret_key: missing; access_key and secret_key'],
  ['[s3]\nbucket = "b"\nsecret_key_file = "/s"', 's3.access_key: missing'],
  [
    '[s3]\nbucket = "b"\nsession_token = "t"',
    's3.session_token: only valid together with access_key and secret_key',
  ],
  [
    '[s3]\nbucket = "b"\naccess_key = "AK"\naccess_key_file = "/a"\nsecret_key = "S"',
    's3.access_key and s3.access_key_file are both set',
  ],
  ['[s3]\nbucket = "b"\naccess_key = 12\nsecret_key = "S"', 's3.access_key: expected a non-empty string'],
  ['[s3]\nbucket = "b"\nextra_headers = "x"', 's3.extra_headers: expected a table, got "x"'],
  ['[s3]\nbucket = "b"\n[s3.extra_headers]\nX-A = 1', 's3.extra_headers.X-A: expected a string'],
  [
    '[s3]\nbucket = "b"\n[s3.extra_headers_file]\n"X A" = 1',
    's3.extra_headers_file."X A": expected a non-empty string, got 1',
  ],
  ['[s3]\nbucket = "b"\n[local]\npath = "/c"', '[s3] and [local] are both present'],
  ['[local]\n', 'local.path: required in [local]'],
  ['[local]\npath = ""', 'local.path: expected a non-empty string'],
  [
    '[local]\npath = "/c"\n[loft]\nlog_compression = "br"',
    'loft.log_compression: needs [s3] (a [local] directory or a WebDAV server keeps no Content-Encoding)',
  ],
  [
    '[http]\nurl = "https://c.example.org"\n[loft]\nlog_compression = "zstd"',
    'loft.log_compression: needs [s3]',
  ],
  [
    '[s3]\nbucket = "b"\n[loft]\nlog_compression = "xz"',
    'loft.log_compression: expected one of "none", "br"',
  ],
];

describe('invalid values are one-line ConfigErrors naming the dotted key', () => {
  for (const [toml, fragment] of INVALID) {
    test(JSON.stringify(toml), () => {
      const message = errorOf(toml);
      assert.ok(message.startsWith('/etc/loft/loft.toml: '), message);
      assert.ok(message.includes(fragment), `${JSON.stringify(message)} lacks ${JSON.stringify(fragment)}`);
    });
  }

  test('several problems: the first three in one line, then a count', () => {
    const message = errorOf(
      '[loft]\nupload_threads = 0\npriority = -1\nprune_enabled = 1\nupload_derivations = 2',
    );
    assert.equal(message.split('; ').length, 4);
    assert.match(message, /; and 1 more$/);
  });

  test('a wrong-typed secret is never shown', () => {
    for (const toml of [
      '[s3]\nbucket = "b"\naccess_key = ["AKIA-SECRET-1"]\nsecret_key = "S"',
      '[s3]\nbucket = "b"\naccess_key = "A"\nsecret_key = 424242',
      '[s3]\nbucket = "b"\n[s3.extra_headers]\nX = ["HDR-SECRET-2"]',
      '[s3]\nbucket = "b"\nendpoint = "https://user:PW-SECRET-3@host"',
      '[s3]\nbucket = "b"\nendpoint = "ht tp://user:PW-SECRET-4@host"',
    ]) {
      const message = errorOf(toml);
      for (const secret of ['AKIA-SECRET-1', '424242', 'HDR-SECRET-2', 'PW-SECRET-3', 'PW-SECRET-4']) {
        assert.ok(!message.includes(secret), `${message} shows ${secret}`);
      }
    }
  });

  test('errors without a config file have no file prefix', () => {
    const { configPath: _omit, ...rest } = CTX;
    assert.throws(
      () => validateDocument({ loft: { upload_threads: 0 } }, rest),
      (err: unknown) => err instanceof ConfigError && err.message.startsWith('loft.upload_threads:'),
    );
  });
});
