// The presence cache against real SQLite files in a temp directory.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { PresenceCache } from '../../../src/state/presence.js';
import { ConfigError } from '../../../src/errors.js';
import { createLogger, silentLogger } from '../../../src/log.js';

const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';
const TARGET = 's3://cache-a@http://127.0.0.1:9000';
let dir: string;
let n = 0;

function hashPart(): string {
  return [...randomBytes(32)].map((b) => NIX32[b % 32]).join('');
}
function freshPath(): string {
  return join(dir, `cache-${++n}.sqlite`);
}

/** A logger whose JSON lines land in `lines`. */
function capturingLogger(): {
  logger: ReturnType<typeof createLogger>;
  lines: Array<Record<string, unknown>>;
} {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: createLogger({ destination }), lines };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'loft-presence-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

void describe('presence rows', () => {
  void test('100,000 hashes: addMany, has, filterMissing keeps order', () => {
    const cache = PresenceCache.open(freshPath(), { target: TARGET });
    const all = Array.from({ length: 100_000 }, hashPart);
    const stored = all.filter((_, i) => i % 3 === 0);
    cache.addMany(stored.map((h) => ({ hashPart: h })));
    assert.equal(cache.count(), new Set(stored).size);
    const expected = all.filter((_, i) => i % 3 !== 0);
    assert.deepEqual(cache.filterMissing(all), expected);
    assert.equal(cache.has(stored[1234]!), true);
    assert.equal(cache.has(expected[4321]!), false);
    assert.deepEqual(cache.filterMissing([]), []);
    cache.close();
  });

  void test('add stores the keys and sizes; adding again replaces', () => {
    const path = freshPath();
    const cache = PresenceCache.open(path, { target: TARGET });
    const h = hashPart();
    cache.add(h, { narinfoKey: `${h}.narinfo`, narKey: 'nar/x.nar.zst', narSize: 1000, fileSize: 400 });
    cache.add(hashPart());
    cache.add(h, { narinfoKey: `${h}.narinfo`, narKey: 'nar/y.nar.zst', narSize: 1000, fileSize: 300 });
    cache.close();
    const db = new Database(path, { readonly: true });
    const rows = db.prepare('SELECT * FROM presence ORDER BY nar_key IS NULL').all() as Array<
      Record<string, unknown>
    >;
    db.close();
    assert.equal(rows.length, 2);
    assert.equal(rows[0]!['nar_key'], 'nar/y.nar.zst');
    assert.equal(rows[0]!['file_size'], 300);
    assert.equal(rows[1]!['narinfo_key'], null);
    assert.equal(typeof rows[1]!['added_at'], 'number');
  });

  void test('remove drops only the given hashes', () => {
    const cache = PresenceCache.open(freshPath(), { target: TARGET });
    const hs = Array.from({ length: 25_000 }, hashPart);
    cache.addMany(hs.map((h) => ({ hashPart: h })));
    cache.remove([...hs.slice(0, 12_000), hashPart()]);
    assert.equal(cache.count(), 13_000);
    assert.deepEqual(cache.filterMissing(hs), hs.slice(0, 12_000));
    cache.close();
  });

  void test('reopening keeps rows and flags', () => {
    const path = freshPath();
    const first = PresenceCache.open(path, { target: TARGET });
    const h = hashPart();
    first.add(h);
    first.setFlag('initial_scan_complete', true);
    first.close();
    first.close(); // idempotent
    const second = PresenceCache.open(path, { target: TARGET });
    assert.equal(second.has(h), true);
    assert.equal(second.getFlag('initial_scan_complete'), true);
    assert.equal(second.getFlag('populated_from_bucket'), false);
    second.close();
  });
});

void describe('flags and targets', () => {
  void test('the two flags are independent', () => {
    const cache = PresenceCache.open(freshPath(), { target: TARGET });
    assert.equal(cache.getFlag('initial_scan_complete'), false);
    cache.setFlag('populated_from_bucket', true);
    assert.equal(cache.getFlag('populated_from_bucket'), true);
    assert.equal(cache.getFlag('initial_scan_complete'), false);
    cache.setFlag('initial_scan_complete', true);
    cache.setFlag('populated_from_bucket', false);
    assert.equal(cache.getFlag('populated_from_bucket'), false);
    assert.equal(cache.getFlag('initial_scan_complete'), true);
    cache.close();
  });

  void test('clear drops rows and populated_from_bucket, keeps initial_scan_complete', () => {
    const cache = PresenceCache.open(freshPath(), { target: TARGET });
    cache.addMany([{ hashPart: hashPart() }, { hashPart: hashPart(), narSize: 5 }]);
    cache.setFlag('initial_scan_complete', true);
    cache.setFlag('populated_from_bucket', true);
    cache.clear();
    assert.equal(cache.count(), 0);
    assert.equal(cache.getFlag('populated_from_bucket'), false);
    assert.equal(cache.getFlag('initial_scan_complete'), true);
    cache.close();
  });

  void test('a cache of another target is cleared on open, with a warning', () => {
    const path = freshPath();
    const old = PresenceCache.open(path, { target: TARGET });
    old.add(hashPart());
    old.setFlag('initial_scan_complete', true);
    old.setFlag('populated_from_bucket', true);
    old.close();
    const { logger, lines } = capturingLogger();
    const other = 'file:///srv/other-cache';
    const cache = PresenceCache.open(path, { target: other, logger });
    assert.equal(cache.count(), 0);
    assert.equal(cache.getFlag('initial_scan_complete'), false);
    assert.equal(cache.getFlag('populated_from_bucket'), false);
    assert.equal(cache.target, other);
    cache.add(hashPart());
    cache.close();
    const warning = lines.find((l) => l['level'] === 40);
    assert.equal(warning?.['previousTarget'], TARGET);
    assert.equal(warning?.['target'], other);
    // The same target again: nothing is cleared and nothing is logged.
    const again = capturingLogger();
    const same = PresenceCache.open(path, { target: other, logger: again.logger });
    assert.equal(same.count(), 1);
    assert.deepEqual(again.lines, []);
    same.close();
  });
});

void describe('sharing one file', () => {
  void test('two instances on one file see each other (WAL)', () => {
    const path = freshPath();
    const a = PresenceCache.open(path, { target: TARGET });
    const b = PresenceCache.open(path, { target: TARGET });
    const h1 = hashPart();
    const h2 = hashPart();
    a.add(h1);
    assert.equal(b.has(h1), true);
    b.addMany([{ hashPart: h2 }]);
    assert.deepEqual(a.filterMissing([h1, h2]), []);
    assert.equal(existsSync(`${path}-wal`), true);
    a.close();
    b.close();
  });

  void test('three processes opening and writing one new file at once', async () => {
    const path = freshPath();
    const moduleUrl = pathToFileURL(
      fileURLToPath(new URL('../../../src/state/presence.ts', import.meta.url)),
    );
    const script = `
      import { PresenceCache } from ${JSON.stringify(moduleUrl.href)};
      const c = PresenceCache.open(process.argv[1], { target: 't' });
      const id = process.argv[2];
      for (let i = 0; i < 20; i++) {
        c.addMany(Array.from({ length: 100 }, (_, j) => ({ hashPart: id + '-' + i + '-' + j })));
      }
      c.close();`;
    const run = promisify(execFile);
    const args = (id: string): string[] => ['--import', 'tsx', '--input-type=module', '-e', script, path, id];
    await Promise.all(['p1', 'p2', 'p3'].map((id) => run(process.execPath, args(id))));
    const cache = PresenceCache.open(path, { target: 't' });
    assert.equal(cache.count(), 6000);
    cache.close();
  });
});

void describe('files that are not a usable cache', () => {
  void test('a corrupt file is moved aside and a fresh cache opened (heal.test.ts has the cases)', () => {
    const path = freshPath();
    writeFileSync(path, 'not a database, just text '.repeat(200));
    const cache = PresenceCache.open(path, { target: TARGET, logger: silentLogger() });
    assert.equal(cache.count(), 0);
    cache.close();
  });

  void test('another SQLite database is refused and left alone', () => {
    const path = freshPath();
    const db = new Database(path);
    db.exec('CREATE TABLE notes (body TEXT)');
    db.close();
    assert.throws(() => PresenceCache.open(path, { target: TARGET }), /is not a loft cache database/);
    const check = new Database(path, { readonly: true });
    const tables = check.prepare(`SELECT name FROM sqlite_master`).pluck().all();
    check.close();
    assert.deepEqual(tables, ['notes']);
  });

  void test('a path below a regular file cannot be created', () => {
    const file = freshPath();
    writeFileSync(file, '');
    assert.throws(
      () => PresenceCache.open(join(file, 'sub', 'cache.sqlite'), { target: TARGET }),
      (err: unknown) => err instanceof ConfigError && /cannot open the loft cache database/.test(err.message),
    );
  });

  void test('missing parent directories are created', () => {
    const path = join(dir, 'a', 'b', 'c', 'cache.sqlite');
    PresenceCache.open(path, { target: TARGET }).close();
    assert.equal(existsSync(path), true);
  });
});
