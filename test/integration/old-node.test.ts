// The built CLI run by a Node.js older than loft supports: one line and exit code 3 instead of the
// segmentation fault the native SQLite addon ends in, and never a failed build from the post-build
// hook. Needs such a Node: /usr/bin/node when it is older (Debian's own), or LOFT_TEST_OLD_NODE.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { nodeIsRecentEnough } from '../../src/cli/node-version.js';
import { isBuilt, LOFT_MAIN } from '../helpers/loft-cli.js';
import { skipTest } from '../helpers/skip.js';

/** An installed Node.js too old for loft, and its version, if there is one. */
function oldNode(): { path: string; version: string } | undefined {
  for (const path of [process.env['LOFT_TEST_OLD_NODE'], '/usr/bin/node']) {
    if (path === undefined || path === '' || !existsSync(path)) continue;
    const run = spawnSync(path, ['-p', 'process.versions.node'], { encoding: 'utf8' });
    const version = run.stdout.trim();
    if (run.status === 0 && !nodeIsRecentEnough(version)) return { path, version };
  }
  return undefined;
}

const dir = mkdtempSync(join(tmpdir(), 'loft-old-node-'));
after(() => rmSync(dir, { recursive: true, force: true }));

void describe('a Node.js too old for loft', () => {
  const node = oldNode();
  const run = (args: string[]) =>
    spawnSync(node!.path, [LOFT_MAIN, ...args], { encoding: 'utf8', cwd: dir, timeout: 60_000 });

  void test('an upload is refused in one line naming that Node, exit code 3, nothing written', (t) => {
    if (!isBuilt()) return skipTest(t, 'built-cli', 'the CLI is not built');
    if (node === undefined) return skipTest(t, 'old-node', 'no Node.js older than 22.15 is installed');
    const config = join(dir, 'loft.toml');
    const cache = join(dir, 'cache');
    writeFileSync(
      config,
      `[local]\npath = "${cache}"\n[loft]\nlocal_cache_path = "${join(dir, 'state.db')}"\n`,
    );
    const out = run(['-c', config, '--upload-path', '/nix/store/00000000000000000000000000000000-x']);
    assert.equal(out.status, 3, out.stderr);
    const lines = out.stderr.trim().split('\n');
    assert.equal(lines.length, 1, out.stderr);
    const want = `loft: Node.js ${node.version} (${node.path}) is too old: loft needs 22.15.0 or newer;`;
    assert.ok(lines[0]!.startsWith(want), lines[0]);
    assert.equal(existsSync(cache), false, 'nothing was written');
  });

  void test('the post-build hook (--enqueue) warns and exits 0: a build never fails for it', (t) => {
    if (!isBuilt()) return skipTest(t, 'built-cli', 'the CLI is not built');
    if (node === undefined) return skipTest(t, 'old-node', 'no Node.js older than 22.15 is installed');
    const out = run(['--enqueue', '/nix/store/00000000000000000000000000000000-x']);
    assert.equal(out.status, 0, out.stderr);
    const want = `loft: warning: could not queue paths for upload: Node.js ${node.version} (${node.path}) is too old`;
    assert.ok(out.stderr.startsWith(want), out.stderr);
  });

  void test('--version still answers, naming the Node it runs on', (t) => {
    if (!isBuilt()) return skipTest(t, 'built-cli', 'the CLI is not built');
    if (node === undefined) return skipTest(t, 'old-node', 'no Node.js older than 22.15 is installed');
    const out = run(['--version']);
    assert.equal(out.status, 0, out.stderr);
    assert.ok(out.stdout.includes(`Node v${node.version}`), out.stdout);
  });
});
