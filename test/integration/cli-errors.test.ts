// Bad command lines and config files that cannot be found or used, against the built CLI: one clear
// error line, the documented exit code, no stack trace, and the bucket untouched (its one path is
// old enough that a prune that wrongly ran would delete it). The shared table runner and the other
// bad-input tables: test/helpers/bad-input-table.ts, test/integration/bad-input-*.test.ts.
import { join } from 'node:path';
import { describeBadInput, type BadInputCase } from '../helpers/bad-input-table.js';

const cases: BadInputCase[] = [
  {
    name: 'unknown flag',
    code: 2,
    message: /^loft: unknown option '--uplod-path'/,
    args: () => ['--uplod-path', '/x'],
  },
  {
    name: 'two actions at once',
    code: 2,
    message: /^loft: give one of --upload-path/,
    args: (e) => ['-c', e.good, '--upload-path', e.fresh, '--populate-cache'],
  },
  {
    name: 'conflicting flags: --prune with --upload-path',
    code: 2,
    message: /^loft: give one of/,
    args: (e) => ['-c', e.good, '--prune', '--upload-path', e.fresh],
  },
  {
    name: 'conflicting flags: --status with --force-scan',
    code: 2,
    message: /^loft: give one of/,
    args: (e) => ['-c', e.good, '--status', '--force-scan'],
  },
  {
    name: '-c without its argument',
    code: 2,
    message: /^loft: option '-c, --config <path>' argument missing/,
    args: () => ['-c'],
  },
  {
    name: '--upload-path without a path',
    code: 2,
    message: /^loft: option '--upload-path <path\.\.\.>' argument missing/,
    args: (e) => ['-c', e.good, '--upload-path'],
  },
  {
    name: 'a stray argument',
    code: 2,
    message: /^loft: too many arguments/,
    args: (e) => ['-c', e.good, 'upload'],
  },
  {
    name: '--dry-run without an action (the daemon cannot dry-run)',
    code: 2,
    message: /^loft: --dry-run needs an action/,
    args: (e) => ['-c', e.good, '--dry-run'],
  },
  {
    // The embedded default is for one-off uploads; a daemon on it copied the whole store, unsigned,
    // into the working directory (issue 11).
    name: 'bare loft without a config file: the daemon needs one',
    code: 2,
    message:
      /^loft: no config file \(loft\.toml not found here\): .*run loft -c FILE \(start from loft\.toml\.example\)/,
    args: () => [],
    timeoutMs: 20_000,
  },
  {
    name: '--force-scan without a config file: the whole store needs a real target',
    code: 2,
    message:
      /^loft: no config file \(loft\.toml not found here\): --force-scan uploads every valid store path/,
    args: () => ['--force-scan'],
    timeoutMs: 20_000,
  },
  {
    // It uploads whatever appears in the store while the command runs, other users' builds too:
    // a CI job without its config must fail, not fill an unsigned ./loft-cache.
    name: '--watch-exec without a config file: the command is not started',
    code: 2,
    message:
      /^loft: no config file \(loft\.toml not found here\): --watch-exec uploads every path the command builds while it runs/,
    args: (e) => ['--watch-exec', '--', 'touch', join(e.dir, 'watch-exec-ran')],
    timeoutMs: 20_000,
  },
  {
    name: 'config file given with -c but missing',
    code: 3,
    message: /^loft: config file .*nope\.toml not found$/,
    args: (e) => ['-c', join(e.dir, 'nope.toml'), '--upload-path', e.fresh],
  },
  {
    name: 'config file given with -c is a directory',
    code: 3,
    message: /^loft: cannot read config file .* \(EISDIR\)$/,
    args: (e) => ['-c', e.dir, '--upload-path', e.fresh],
  },
  {
    name: '--prune while pruning is disabled (the expired path must stay)',
    code: 3,
    message: /^loft: pruning is disabled \(loft\.prune_enabled = false\)/,
    args: async (e) => ['-c', await e.config('prune-off', { loft: { prune_enabled: 'false' } }), '--prune'],
  },
  {
    name: '--prune --dry-run while pruning is disabled',
    code: 3,
    message: /^loft: pruning is disabled/,
    args: async (e) => [
      '-c',
      await e.config('prune-off-dry', { loft: { prune_enabled: null } }),
      '--prune',
      '--dry-run',
    ],
  },
];

describeBadInput(
  'bad command lines: one line, a stable exit code, the bucket untouched',
  'cli-errors',
  cases,
);
