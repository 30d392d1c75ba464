import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { terminalProgress } from '../../../src/cli/terminal-progress.js';
import type { UploadedPath } from '../../../src/upload/upload-path.js';

const A = '/nix/store/00000000000000000000000000000000-alpha';
const B = '/nix/store/11111111111111111111111111111111-beta';
const KiB = 1024;

function fakeTerminal(columns: number) {
  const writes: string[] = [];
  const stream = { columns, write: (s: string) => (writes.push(s), true) } as unknown as NodeJS.WriteStream;
  /** The line as the terminal shows it now: the text after the last redraw. */
  const shown = () => (writes.join('').split('\r\x1b[2K').pop() ?? '').replace(/\n$/, '');
  return { stream, writes, shown };
}

const committed = (path: string, narSize: number, fileSize = 1): UploadedPath => ({
  path,
  narKey: 'k',
  narSize,
  fileSize,
});

test('counts acknowledged bytes, not bytes read, and shows 100% only at the end', async () => {
  const term = fakeTerminal(160);
  let now = 0;
  const p = terminalProgress(term.stream, () => now);
  p.planned(2, 8 * KiB, 1);
  p.started(A, 4 * KiB);
  p.started(B, 4 * KiB);
  p.narBytes(A, 4 * KiB);
  p.fileBytes(A, 4 * KiB);
  p.narBytes(B, 4 * KiB);
  now = 1000;
  await sleep(250);
  // Every byte read, nothing acknowledged: 0 %, and the total is still an estimate.
  assert.match(term.shown(), /^\[0\/2\] 0% 0 B\/~8\.0 KiB .*\| alpha, beta$/);
  p.storedBytes(A, 2 * KiB);
  now = 2000;
  await sleep(250);
  assert.match(term.shown(), /^\[0\/2\] 25% 2\.0 KiB\/~8\.0 KiB /);
  p.storedBytes(A, 2 * KiB);
  p.narStored(A, 4 * KiB);
  p.uploaded(committed(A, 4 * KiB, 4 * KiB));
  p.storedBytes(B, 4 * KiB);
  p.narStored(B, 4 * KiB);
  now = 3000;
  await sleep(250);
  // Every byte stored, one narinfo still to write: not 100 % (how much less depends on what a
  // path's requests cost: progress-estimate.test.ts).
  assert.match(term.shown(), /^\[1\/2\] \d\d% 8\.0 KiB\/8\.0 KiB .*\| beta$/);
  p.uploaded(committed(B, 4 * KiB, 4 * KiB));
  p.done();
  assert.match(term.shown(), /^\[2\/2\] 100% 8\.0 KiB\/8\.0 KiB/);
  assert.ok(term.writes.join('').endsWith('\n'), 'the final line is ended');
});

test('the rate of acknowledged bytes over the last seconds gives the ETA', async () => {
  const term = fakeTerminal(160);
  let now = 0;
  const p = terminalProgress(term.stream, () => now);
  p.planned(1, 100 * KiB, 1);
  p.started(A, 100 * KiB);
  p.narBytes(A, 100 * KiB); // read at once, stored 10 KiB a second
  for (let i = 1; i <= 5; i++) {
    now = i * 1000;
    p.storedBytes(A, 10 * KiB);
    await sleep(220);
  }
  // 10 KiB/s over the window, 50 KiB left: 5 s.
  assert.match(term.shown(), /10\.0 KiB\/s ETA 0:05 \| alpha$/);
  p.done();
});

test('a retry starts the path over; failures print on their own line', async () => {
  const term = fakeTerminal(120);
  let now = 0;
  const p = terminalProgress(term.stream, () => now);
  p.planned(1, 4 * KiB, 1);
  p.started(A, 4 * KiB);
  p.storedBytes(A, 3 * KiB);
  p.retrying(A, 1, new Error('reset'), 1000);
  now = 1000;
  await sleep(250);
  assert.match(term.shown(), /^\[0\/1\] 0% 0 B\/~4\.0 KiB/);
  p.failed(A, new Error('boom'));
  assert.match(term.writes.join(''), /failed \/nix\/store\/0+-alpha: boom\n/);
  p.done();
});

test('nothing is drawn after done(), so the summary is the last line', async () => {
  const term = fakeTerminal(80);
  const p = terminalProgress(term.stream, () => 0);
  p.planned(1, KiB, 1);
  p.started(A, KiB);
  p.uploaded(committed(A, KiB));
  p.done();
  const count = term.writes.length;
  await sleep(450);
  p.done();
  assert.equal(term.writes.length, count);
});
