// scripts/bootstrap.sh on macOS: tools/node pins Linux builds of Node only and there is no apt-get,
// so the script stops before installing anything and says how to proceed. macOS is played by a
// `uname` on PATH that answers Darwin; nothing else of the machine changes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/nix-module.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loft-bootstrap-macos-'));
  await writeFile(join(dir, 'uname'), '#!/bin/sh\necho Darwin\n', { mode: 0o755 });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('on macOS the bootstrap does not fetch the Linux-only pinned Node and names the ways on', () => {
  const run = spawnSync('bash', [join(ROOT, 'scripts/bootstrap.sh')], {
    env: { ...process.env, PATH: `${dir}:${process.env['PATH']}`, LOFT_NODE: '' },
    encoding: 'utf8',
  });
  assert.equal(run.status, 1, run.stderr);
  assert.match(run.stderr, /^bootstrap: macOS: tools\/node pins a Node\.js for Linux only;/m);
  assert.match(run.stderr, /nix develop/);
  assert.match(run.stderr, /LOFT_NODE=system bash scripts\/bootstrap\.sh/);
  assert.equal(run.stderr.trim().split('\n').length, 1, 'one clear line');
});
