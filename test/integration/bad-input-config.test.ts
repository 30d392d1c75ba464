// Bad configuration files against the built CLI: malformed TOML, wrong types, numbers out of range,
// bad prune schedules, impossible table combinations. Each is one `loft: ` line naming the file and
// the dotted key, exit 3, and the bucket untouched. Unknown keys are errors too (a typo such as
// signing_key_pth would otherwise publish unsigned narinfos); the error offers the closest known key.
import { describeBadInput, type BadInputCase, type ConfigEdits } from '../helpers/bad-input-table.js';

/** A config with `edits`, used for an upload of the fresh path (which must not happen). */
function configCase(name: string, message: RegExp, edits: ConfigEdits): BadInputCase {
  return {
    name,
    code: 3,
    message,
    args: async (e) => [
      '-c',
      await e.config(name.replace(/\W+/g, '-').slice(0, 30), edits),
      '--upload-path',
      e.fresh,
    ],
  };
}

const loft = (key: string, value: string): ConfigEdits => ({ loft: { [key]: value } });
const s3 = (key: string, value: string | null): ConfigEdits => ({ s3: { [key]: value } });

const cases: BadInputCase[] = [
  configCase('malformed TOML: unclosed table header', /^loft: .*loft\.toml:\d+:\d+: invalid TOML/, {
    extra: '[s3\nbucket = "x"',
  }),
  configCase('malformed TOML: a key defined twice', /invalid TOML: trying to redefine/, {
    extra: '[loft]\nupload_threads = 2',
  }),
  configCase('malformed TOML: a control byte in a string', /invalid TOML: control characters/, {
    extra: '[s3.extra_headers]\nx-odd = "a\u0001b"',
  }),
  configCase(
    'wrong type: a string for a number',
    /loft\.upload_threads: expected an integer .*, got "many"/,
    loft('upload_threads', '"many"'),
  ),
  configCase(
    'wrong type: a string for a boolean',
    /loft\.prune_enabled: expected true or false, got "yes"/,
    loft('prune_enabled', '"yes"'),
  ),
  configCase(
    'wrong type: a string for an array',
    /loft\.skip_signed_by_keys: expected an array/,
    loft('skip_signed_by_keys', '"cache.nixos.org-1"'),
  ),
  configCase('wrong type: [s3] is not a table', /: s3: expected a table/, {
    s3: null,
    head: 's3 = "my-bucket"',
  }),
  configCase(
    'negative number',
    /loft\.upload_threads: expected an integer from 1 to 256, got -1/,
    loft('upload_threads', '-1'),
  ),
  configCase(
    'huge number',
    /s3\.part_size_mb: expected an integer from 5 to 5120, got 10000000/,
    s3('part_size_mb', '10000000'),
  ),
  configCase(
    'a number past 64 bits',
    /invalid TOML: integer value cannot be represented/,
    loft('priority', '99999999999999999999'),
  ),
  configCase(
    'a fraction for a count',
    /s3\.max_attempts: expected an integer from 1 to 20, got 2\.5/,
    s3('max_attempts', '2.5'),
  ),
  configCase(
    'infinity',
    /loft\.prune_max_size_gb: expected a number greater than 0/,
    loft('prune_max_size_gb', 'inf'),
  ),
  configCase(
    'not a number',
    /loft\.prune_max_size_gb: expected a number greater than 0/,
    loft('prune_max_size_gb', 'nan'),
  ),
  configCase(
    'zero retention',
    /loft\.prune_retention_days: expected an integer from 1/,
    loft('prune_retention_days', '0'),
  ),
  configCase(
    'target percentage of 100',
    /loft\.prune_target_percentage: expected an integer from 1 to 99/,
    loft('prune_target_percentage', '100'),
  ),
  configCase(
    'bad schedule: 24:00',
    /loft\.prune_schedule: expected an interval .*, got "24:00"/,
    loft('prune_schedule', '"24:00"'),
  ),
  configCase(
    'bad schedule: zero interval',
    /loft\.prune_schedule: .*got "0h"/,
    loft('prune_schedule', '"0h"'),
  ),
  configCase(
    'bad schedule: over a year',
    /loft\.prune_schedule: .*got "366d"/,
    loft('prune_schedule', '"366d"'),
  ),
  configCase(
    'bad schedule: cron syntax',
    /loft\.prune_schedule: .*got "0 3 \* \* \*"/,
    loft('prune_schedule', '"0 3 * * *"'),
  ),
  configCase(
    'unknown compression',
    /loft\.compression: expected one of "zstd", "xz", "none", got "gzip"/,
    loft('compression', '"gzip"'),
  ),
  configCase(
    'compression level out of range',
    /loft\.compression_level: expected an integer from 1 to 19, got 25/,
    loft('compression_level', '25'),
  ),
  configCase('[s3] without a bucket', /s3\.bucket: required in \[s3\]/, s3('bucket', null)),
  configCase(
    'a bucket name with a slash',
    /s3\.bucket: expected a bucket name without spaces or slashes/,
    s3('bucket', '"a/b"'),
  ),
  configCase('an empty region', /s3\.region: expected a non-empty string/, s3('region', '""')),
  configCase('[s3] and [local] together', /\[s3\] and \[local\] are both present/, {
    extra: '[local]\npath = "cache"',
  }),
  configCase('[local] without a path', /local\.path: required/, { s3: null, extra: '[local]' }),
  {
    name: 'NIX_STORE_DIR is relative',
    code: 3,
    message:
      /^loft: .*loft\.toml: environment variable NIX_STORE_DIR: expected an absolute path, got "nix\/store"/,
    args: (e) => ['-c', e.good, '--upload-path', e.fresh],
    env: () => ({ NIX_STORE_DIR: 'nix/store' }),
  },
  configCase(
    'an unknown key is an error with a suggestion',
    /^loft: .*loft\.toml: unknown key loft\.uplod_threads \(did you mean loft\.upload_threads\?\): fix its name or remove it/,
    loft('uplod_threads', '4'),
  ),
  // A typo in the key's name must not publish unsigned narinfos (issue 11).
  configCase(
    'a typo in signing_key_path is an error, never an unsigned upload',
    /^loft: .*loft\.toml: unknown key loft\.signing_key_pth \(did you mean loft\.signing_key_path\?\)/,
    { loft: { signing_key_path: null, signing_key_pth: '"key.sec"' } },
  ),
  configCase('an unknown table is an error', /^loft: .*loft\.toml: unknown key s4 \(did you mean s3\?\)/, {
    extra: '[s4]\nbucket = "x"',
  }),
];

describeBadInput(
  'bad configuration: one line naming the key, exit 3, the bucket untouched',
  'bad-config',
  cases,
);
