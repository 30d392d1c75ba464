// Schema migrations of the local cache database, on real SQLite files.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS, migrate, schemaVersion, type Migration } from '../../../src/state/migrations.js';
import { PresenceCache } from '../../../src/state/presence.js';
import { UploadQueue } from '../../../src/state/queue.js';
import { ConfigError } from '../../../src/errors.js';

let dir: string;
let n = 0;
function freshPath(): string {
  return join(dir, `db-${++n}.sqlite`);
}
function columns(db: Database.Database, table: string): string[] {
  return (db.pragma(`table_info(${table})`) as Array<{ name: string }>).map((c) => c.name);
}

// The version-1 schema as loft 0.1 shipped it, written out literally: a file made by that release
// must keep opening with every later one.
const SCHEMA_V1 = `
  CREATE TABLE presence (hash_part TEXT PRIMARY KEY NOT NULL, narinfo_key TEXT, nar_key TEXT,
    nar_size INTEGER, file_size INTEGER, added_at INTEGER NOT NULL) WITHOUT ROWID;
  CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
  PRAGMA user_version = 1;`;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'loft-migrations-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

void describe('migrate', () => {
  void test('an empty file gets the whole schema', () => {
    const db = new Database(freshPath());
    assert.deepEqual(migrate(db, 'x'), { from: 0, to: MIGRATIONS.length });
    assert.equal(schemaVersion(db), MIGRATIONS.length);
    assert.deepEqual(columns(db, 'presence'), [
      'hash_part',
      'narinfo_key',
      'nar_key',
      'nar_size',
      'file_size',
      'added_at',
      'signer',
    ]);
    assert.deepEqual(columns(db, 'meta'), ['key', 'value']);
    assert.deepEqual(migrate(db, 'x'), { from: MIGRATIONS.length, to: MIGRATIONS.length });
    db.close();
  });

  void test('a version-1 file moves to a later version, running only the new migration, once', () => {
    const db = new Database(freshPath());
    db.exec(SCHEMA_V1);
    db.prepare(`INSERT INTO presence (hash_part, added_at) VALUES ('aaa', 1)`).run();
    let ran = 0;
    const v2: Migration = {
      version: MIGRATIONS.length + 1,
      description: 'test: an upload queue',
      up(d) {
        ran++;
        d.exec('CREATE TABLE upload_queue (store_path TEXT PRIMARY KEY NOT NULL)');
      },
    };
    assert.deepEqual(migrate(db, 'x', [...MIGRATIONS, v2]), { from: 1, to: v2.version });
    migrate(db, 'x', [...MIGRATIONS, v2]);
    assert.equal(ran, 1);
    assert.deepEqual(columns(db, 'upload_queue'), ['store_path']);
    assert.equal(db.prepare('SELECT count(*) FROM presence').pluck().get(), 1);
    db.close();
  });

  void test('a failing migration leaves the version and the schema as they were', () => {
    const db = new Database(freshPath());
    migrate(db, 'x');
    const broken: Migration = {
      version: MIGRATIONS.length + 1,
      description: 'test: fails halfway',
      up(d) {
        d.exec('CREATE TABLE half (x)');
        throw new Error('halfway');
      },
    };
    assert.throws(() => migrate(db, 'x', [...MIGRATIONS, broken]), /halfway/);
    assert.equal(schemaVersion(db), MIGRATIONS.length);
    assert.deepEqual(columns(db, 'half'), []);
    db.close();
  });

  void test('a list out of order is a programming error', () => {
    const db = new Database(':memory:');
    const skip: Migration = { version: MIGRATIONS.length + 2, description: 'gap', up: () => undefined };
    assert.throws(() => migrate(db, 'x', [...MIGRATIONS, skip]), /expected/);
    db.close();
  });
});

void describe('opening files of other versions', () => {
  void test('a version-1 file made by hand opens with its rows', () => {
    const path = freshPath();
    const db = new Database(path);
    db.exec(SCHEMA_V1);
    db.prepare(`INSERT INTO presence (hash_part, added_at) VALUES ('bbb', 1)`).run();
    db.prepare(`INSERT INTO meta VALUES ('target', 't'), ('initial_scan_complete', '1')`).run();
    db.close();
    const cache = PresenceCache.open(path, { target: 't' });
    assert.equal(cache.has('bbb'), true);
    assert.equal(cache.getFlag('initial_scan_complete'), true);
    cache.close();
  });

  void test('a version-5 file keeps its queue: old rows go first, then the scan backlog queued after', () => {
    const path = freshPath();
    const db = new Database(path);
    migrate(db, path, MIGRATIONS.slice(0, 5));
    const row = db.prepare(
      `INSERT INTO queue (path, state, attempts, next_attempt_at, enqueued_at) VALUES (?, ?, 0, ?, ?)`,
    );
    row.run('/nix/store/old-pending', 'pending', 5, 5);
    row.run('/nix/store/old-parked', 'parked', 5, 5);
    db.close();
    const queue = UploadQueue.open(path, { now: () => 10 });
    assert.equal(schemaVersion(new Database(path, { readonly: true })), 6);
    queue.enqueue(['/nix/store/scanned'], 'backlog');
    assert.deepEqual(queue.counts(), { pending: 2, parked: 1 });
    assert.deepEqual(queue.laneCounts(), { new: 1, backlog: 1 });
    assert.deepEqual(
      queue.takeDue(10).map((i) => [i.path, i.lane]),
      [['/nix/store/old-pending', 'new']],
    );
    queue.markDone(['/nix/store/old-pending']);
    assert.deepEqual(
      queue.takeDue(10).map((i) => [i.path, i.lane]),
      [['/nix/store/scanned', 'backlog']],
    );
    assert.equal(queue.parked()[0]?.path, '/nix/store/old-parked');
    queue.close();
  });

  void test('migrate refuses a newer schema with a clear error and leaves it untouched', () => {
    const path = freshPath();
    PresenceCache.open(path, { target: 't' }).close();
    const db = new Database(path);
    db.pragma('user_version = 99');
    assert.throws(
      () => migrate(db, path),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message.includes(`${path} has schema version 99, newer than this loft knows`),
    );
    db.close();
    const check = new Database(path, { readonly: true });
    assert.equal(schemaVersion(check), 99);
    check.close();
  });
});
