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
  assert.deepEqual(o.watchExec, ['nix-build', '-A', 'x', '--option', 'y', 'z']);
});

test("--watch-exec without --: options after the command's first word are the command's", () => {
  const o = parse(['--watch-exec', 'nix', 'build', '--debug', '-c', 'not-ours']);
  assert.deepEqual(o.watchExec, ['nix', 'build', '--debug', '-c', 'not-ours']);
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
  assert.deepEqual(parse(['--upload-path', 'a', 'b']).watchExec, []);
});

test('--wait and --timeout', () => {
  assert.equal(parse(['--wait']).timeoutSecs, DEFAULT_WAIT_TIMEOUT_SECS);
  assert.equal(parse(['--wait', '--timeout', '1.5']).timeoutSecs, 1.5);
  assert.equal(parse(['--wait', '--timeout', '0']).timeoutSecs, 0);
  for (const bad of [
    ['--wait', '--timeout', 'soon'],
    ['--wait', '--timeout', '-3'],
    ['--wait', '--timeout', ' '],
    ['--timeout', '9'],
  ])
    assert.throws(() => parse(bad), UsageError, bad.join(' '));
});
