import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { collectPaths } from '../../../src/cli/read-paths.js';

test('reads "-" from stdin, splitting on any whitespace, keeping order and dropping repeats', async () => {
  const stdin = Readable.from([
    Buffer.from('/nix/store/a-x /nix/store/b-y\n/nix/store/a-x\n\n/nix/store/c-z\n'),
  ]);
  const paths = await collectPaths(['/nix/store/first', '-'], stdin);
  assert.deepEqual(paths, ['/nix/store/first', '/nix/store/a-x', '/nix/store/b-y', '/nix/store/c-z']);
});
