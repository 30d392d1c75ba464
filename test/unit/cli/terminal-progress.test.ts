import { test } from 'node:test';
import assert from 'node:assert/strict';
import { terminalProgress } from '../../../src/cli/terminal-progress.js';

test('draws done/total, bytes and current paths, and prints failures on their own line', async () => {
  let out = '';
  const stream = { columns: 120, write: (s: string) => ((out += s), true) } as unknown as NodeJS.WriteStream;
  let now = 0;
  const p = terminalProgress(stream, () => now);
  p.planned(2, 2048);
  p.started('/nix/store/00000000000000000000000000000000-alpha');
  p.narBytes(1024);
  now = 1000;
  await new Promise((r) => setTimeout(r, 250));
  assert.match(out, /\[0\/2\] 1\.0 KiB\/2\.0 KiB 1\.0 KiB\/s alpha/);
  p.failed('/nix/store/00000000000000000000000000000000-alpha', new Error('boom'));
  assert.match(out, /failed \/nix\/store\/0+-alpha: boom\n/);
  p.done();
});
