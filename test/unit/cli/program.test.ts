// The command line of the CI features: --watch-exec takes the rest of argv as the command, word
// for word (commander's passThroughOptions), and --wait/--timeout are checked before anything runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_WAIT_TIMEOUT_SECS, parseCli } from '../../../src/cli/program.js';
import { UsageError } from '../../../src/errors.js';

const parse = (argv: string[]) => parseCli(argv, '0.0.0', () => undefined)!;

test('--watch-exec: everything after -- is the command, its options included', () => {
  const o = parse(['-c', 'cfg', '--watch-exec', '--', 'nix-build', '-A', 'x', '--option', 'y', 'z']);
  assert.equal(o.config, 'cfg');
  assert.deepEqual(o.action, { kind: 'watch-exec', command: ['nix-build', '-A', 'x', '--option', 'y', 'z'] });
});

test("--watch-exec without --: options after the command's first word are the command's", () => {
  const o = parse(['--watch-exec', 'nix', 'build', '--debug', '-c', 'not-ours']);
  assert.deepEqual(o.action, { kind: 'watch-exec', command: ['nix', 'build', '--debug', '-c', 'not-ours'] });
  assert.equal(o.debug, false);
  assert.equal(o.config, 'loft.toml');
});

test('a command without --watch-exec, or --watch-exec without a command, is a usage error', () => {
  assert.throws(
    () => parse(['stray']),
    (e) => e instanceof UsageError && /too many arguments/.test(e.message),
  );
  assert.throws(
    () => parse(['--watch-exec']),
    (e) => e instanceof UsageError && /needs a command/.test(e.message),
  );
  assert.deepEqual(parse(['--upload-path', 'a', 'b']).action, {
    kind: 'upload',
    paths: ['a', 'b'],
    dryRun: false,
  });
});

test('--wait and --timeout', () => {
  assert.deepEqual(parse(['--wait']).action, { kind: 'wait', timeoutSecs: DEFAULT_WAIT_TIMEOUT_SECS });
  assert.deepEqual(parse(['--wait', '--timeout', '1.5']).action, { kind: 'wait', timeoutSecs: 1.5 });
  assert.deepEqual(parse(['--wait', '--timeout', '0']).action, { kind: 'wait', timeoutSecs: 0 });
  for (const bad of [
    ['--wait', '--timeout', 'soon'],
    ['--wait', '--timeout', '-3'],
    ['--wait', '--timeout', ' '],
    ['--timeout', '9'],
  ])
    assert.throws(() => parse(bad), UsageError, bad.join(' '));
});

test('the flags become exactly one action; none is the daemon', () => {
  assert.deepEqual(parse([]).action, { kind: 'daemon' });
  assert.deepEqual(parse(['--prune', '--dry-run']).action, { kind: 'prune', dryRun: true });
  assert.deepEqual(parse(['verify', '--repair']).action, {
    kind: 'verify',
    paths: [],
    checkContents: false,
    repair: true,
    deleteUnrepairable: false,
    dryRun: false,
  });
  assert.deepEqual(parse(['verify', '/nix/store/a', './result']).action, {
    kind: 'verify',
    paths: ['/nix/store/a', './result'],
    checkContents: false,
    repair: false,
    deleteUnrepairable: false,
    dryRun: false,
  });
  assert.deepEqual(parse(['--status']), {
    config: 'loft.toml',
    configExplicit: false,
    debug: false,
    action: { kind: 'status' },
  });
  for (const two of [
    ['--prune', '--status'],
    ['--upload-path', 'a', '--force-scan'],
    ['verify', '--populate-cache'],
    ['--wait', '--watch-exec', 'true'],
  ])
    assert.throws(
      () => parse(two),
      (e) => e instanceof UsageError && /^give one of --upload-path, .*, verify, doctor$/.test(e.message),
      two.join(' '),
    );
});

test('--enqueue wins over every other action: a post-build hook never fails a build', () => {
  assert.deepEqual(parse(['--enqueue']).action, { kind: 'enqueue', paths: [] });
  assert.deepEqual(parse(['--prune', '--status', '--enqueue', 'p', 'q']).action, {
    kind: 'enqueue',
    paths: ['p', 'q'],
  });
  assert.deepEqual(parse(['--enqueue', 'p', '--upload-path', 'x', '--dry-run']).action, {
    kind: 'enqueue',
    paths: ['p'],
  });
});

test('--clear-cache and --reset-initial-scan run alone or before an action that opens the cache', () => {
  const alone = parse(['--clear-cache', '--dry-run']);
  assert.deepEqual(alone.action, { kind: 'cache-maintenance' });
  assert.deepEqual(alone.maintenance, { clearCache: true, resetInitialScan: false, dryRun: true });
  const before = parse(['--reset-initial-scan', '--upload-path', 'p']);
  assert.equal(before.action.kind, 'upload');
  assert.deepEqual(before.maintenance, { clearCache: false, resetInitialScan: true, dryRun: false });
  assert.equal(parse(['--prune']).maintenance, undefined);
  for (const bad of [
    ['--clear-cache', '--status'],
    ['--reset-initial-scan', '--wait'],
    ['--clear-cache', '--watch-exec', 'x'],
  ])
    assert.throws(
      () => parse(bad),
      (e) => e instanceof UsageError && /go alone or with a one-off command/.test(e.message),
      bad.join(' '),
    );
});

test('--dry-run is refused by the actions that always upload', () => {
  assert.throws(
    () => parse(['--dry-run']),
    (e) => e instanceof UsageError && /needs an action such as --upload-path/.test(e.message),
  );
  assert.throws(
    () => parse(['--dry-run', '--watch-exec', 'x']),
    (e) => e instanceof UsageError && /does not go with --watch-exec/.test(e.message),
  );
});
