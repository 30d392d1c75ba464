import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PresenceCache } from '../../../src/state/presence.js';
import { narKeyOfUrl, summarizeNarinfo } from '../../../src/prune/narinfo-summary.js';
import { PruneDb } from '../../../src/state/prune-db.js';
import { h } from './policy-fixtures.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
const obj = { hashPart: h(1), size: 321, lastModified: 1000 };

test('a valid narinfo: URL, references without self, deriver', () => {
  const text = [
    `StorePath: /nix/store/${h(1)}-a`,
    `URL: nar/${h(1)}-x.nar.zst`,
    'Compression: zstd',
    `NarHash: sha256:${'1'.repeat(52)}`,
    'NarSize: 5',
    `References: ${h(1)}-a ${h(2)}-b`,
    `Deriver: ${h(3)}-a.drv`,
    '',
  ].join('\n');
  const { meta, problem } = summarizeNarinfo(obj, text, '/nix/store');
  assert.equal(problem, undefined);
  assert.deepEqual(meta, {
    hashPart: h(1),
    narinfoSize: 321,
    lastModified: 1000,
    narUrl: `nar/${h(1)}-x.nar.zst`,
    references: [h(2)],
    deriver: `${h(3)}-a.drv`,
    malformed: false,
  });
});

test('a malformed narinfo is read leniently and marked malformed', () => {
  const text = `StorePath: garbage\nURL: nar/y.nar.xz\nReferences: ${h(4)}-d junk\n`;
  const { meta, problem } = summarizeNarinfo(obj, text, '/nix/store');
  assert.ok(problem);
  assert.equal(meta.malformed, true);
  assert.equal(meta.narUrl, 'nar/y.nar.xz');
  assert.deepEqual(meta.references, [h(4)]);
});

test('a narinfo whose StorePath is another path is treated as malformed', () => {
  const text = [
    `StorePath: /nix/store/${h(9)}-other`,
    'URL: nar/z.nar',
    `NarHash: sha256:${'1'.repeat(52)}`,
    'NarSize: 5',
    '',
  ].join('\n');
  assert.equal(summarizeNarinfo(obj, text, '/nix/store').meta.malformed, true);
});

test('URLs: relative keys are followed, other hosts are not ours', () => {
  assert.equal(narKeyOfUrl('nar/a.nar.xz'), 'nar/a.nar.xz');
  assert.equal(narKeyOfUrl('./nar/a.nar'), 'nar/a.nar');
  assert.equal(narKeyOfUrl('https://example.org/nar/a.nar'), undefined);
});

test('narinfo_meta round-trips, forgets on another target, and the lock refuses a second owner', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'loft-prune-db-'));
  dirs.push(dir);
  const cache = PresenceCache.open(join(dir, 'c.db'), { target: 'one' });
  const db = PruneDb.open(cache.path, 'one');
  const meta = {
    hashPart: h(1),
    narinfoSize: 1,
    lastModified: 2,
    references: [h(2), h(3)],
    malformed: false,
  };
  db.putMany([meta, { ...meta, hashPart: h(2), references: [], malformed: true, narUrl: 'nar/x' }]);
  assert.deepEqual(db.all().get(h(1)), meta);
  assert.equal(db.all().get(h(2))?.narUrl, 'nar/x');
  db.remove([h(2)]);
  assert.deepEqual([...db.all().keys()], [h(1)]);
  db.close();
  const again = PruneDb.open(cache.path, 'one');
  assert.equal(again.all().size, 1);
  again.close();
  const other = PruneDb.open(cache.path, 'two');
  assert.equal(other.all().size, 0, 'rows of another bucket are dropped');

  assert.equal(other.tryLock({ pid: 1, host: 'a' }, 0), undefined);
  assert.deepEqual(other.tryLock({ pid: 2, host: 'b' }, 1000), { pid: 1, host: 'a' });
  assert.equal(other.tryLock({ pid: 2, host: 'b' }, 7 * 3_600_000), undefined, 'a stale lock is taken over');
  other.unlock();
  assert.equal(other.tryLock({ pid: 3, host: 'c' }, 7 * 3_600_000), undefined);
  other.close();
  cache.close();
});
