// `loft --status`'s storage-access line, from the record the daemon keeps in the database
// (src/daemon/access-state.ts): a real queue file, the status lines as printed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { statusLines } from '../../../src/cli/status-command.js';
import { encodeAccessLost } from '../../../src/daemon/access-state.js';
import { UploadQueue } from '../../../src/state/queue.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loft-status-access-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('ok without a record; LOST with its time, code and message while the daemon records one', () => {
  const queue = UploadQueue.open(join(dir, 'cache.db'));
  try {
    const presence = { paths: 0, initialScanComplete: true };
    const line = () => statusLines(queue, presence, 'db', true).find((l) => l.startsWith('storage access:'));
    assert.equal(line(), 'storage access: ok');
    const since = Date.parse('2026-12-06T12:00:00Z');
    const message = 'bucket "b" at s3 refused list (AccessDenied, HTTP 403): check the access key id';
    queue.setState('storage_access', encodeAccessLost({ since, code: 'E_STORAGE_AUTH', message }));
    assert.match(
      line() ?? '',
      /^storage access: LOST since 2026-12-06T12:00:00\.000Z \(E_STORAGE_AUTH\): bucket "b" at s3 refused list .*resumes by itself/,
    );
    queue.setState('storage_access', '');
    assert.equal(line(), 'storage access: ok');
    queue.setState('storage_access', '{not json');
    assert.equal(line(), 'storage access: ok', 'a damaged record says nothing');
  } finally {
    queue.close();
  }
});

test('the queued line counts new builds and the store scan backlog apart', () => {
  const queue = UploadQueue.open(join(dir, 'lanes.db'));
  try {
    queue.enqueue(['/nix/store/a', '/nix/store/b', '/nix/store/c'], 'backlog');
    queue.enqueue(['/nix/store/d', '/nix/store/a']);
    const lines = statusLines(queue, { paths: 0, initialScanComplete: true }, 'db', true);
    const at = lines.indexOf('queued: 4 paths waiting for upload');
    assert.ok(at >= 0, lines.join('\n'));
    assert.equal(
      lines[at + 1],
      '  of which new builds: 2 (uploaded first); store scan backlog: 2 (behind them)',
    );
  } finally {
    queue.close();
  }
});
