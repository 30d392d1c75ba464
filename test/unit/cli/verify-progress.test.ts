import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { verifyProgress } from '../../../src/cli/verify-progress.js';

function fakeTerminal(columns: number) {
  const writes: string[] = [];
  const stream = { columns, write: (s: string) => (writes.push(s), true) } as unknown as NodeJS.WriteStream;
  const shown = () => writes.join('').split('\r\x1b[2K').pop() ?? '';
  return { stream, writes, shown };
}

test('redraws narinfos checked, problems and bytes read, within the width; erased when done', async () => {
  const term = fakeTerminal(80);
  const p = verifyProgress(term.stream);
  p.update({ total: 120, done: 7, problems: 2, bytesRead: 0 });
  await sleep(250);
  assert.equal(term.shown(), '[7/120] narinfos checked, 2 problems');
  p.update({ total: 120, done: 9, problems: 2, bytesRead: 3 * 1024 * 1024 });
  await sleep(250);
  assert.equal(term.shown(), '[9/120] narinfos checked, 2 problems, 3.0 MiB of NARs read');
  p.done();
  assert.equal(term.shown(), '', 'the line is erased so the problem lines stand alone');
  const narrow = fakeTerminal(20);
  const q = verifyProgress(narrow.stream);
  q.update({ total: 120, done: 9, problems: 2, bytesRead: 0 });
  await sleep(250);
  q.done();
  assert.ok(
    narrow.writes.every((w) => w.replace('\r\x1b[2K', '').length < 20),
    narrow.writes.join('|'),
  );
});
