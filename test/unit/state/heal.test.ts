// A damaged local database heals itself (src/state/heal.ts, database.ts): real SQLite files made
// unusable the ways a disk or a person does it, then opened the way every loft command opens them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import Database from 'better-sqlite3';
import pino from 'pino';
import { ConfigError } from '../../../src/errors.js';
import { openStateDb } from '../../../src/state/database.js';
import {
  DAMAGED_COPIES_KEPT,
  REBUILD_NOTE_KEY,
  damagedName,
  isDatabaseCorrupt,
} from '../../../src/state/heal.js';
import { MIGRATIONS } from '../../../src/state/migrations.js';
import { PresenceCache } from '../../../src/state/presence.js';
import { UploadQueue } from '../../../src/state/queue.js';

let dir: string;
let n = 0;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loft-heal-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => {
    for (const l of c.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

/** A database with queue rows and presence rows, closed (checkpointed into the main file). */
function populated(): string {
  const path = join(dir, `c${n++}`, 'cache.db');
  const cache = PresenceCache.open(path, { target: 't' });
  cache.addMany(Array.from({ length: 2000 }, (_, i) => ({ hashPart: String(i).padStart(32, 'a') })));
  cache.close();
  const queue = UploadQueue.open(path);
  queue.enqueue(['/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-x']);
  queue.close();
  return path;
}

function note(path: string): string | undefined {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(REBUILD_NOTE_KEY) as
      string | undefined;
  } finally {
    db.close();
  }
}

function asideOf(path: string): string[] {
  const base = path.split('/').pop()!;
  return readdirSync(join(path, '..')).filter(
    (f) => f.startsWith(`${base}.damaged-`) && !/-(wal|shm)$/.test(f),
  );
}

describe('a damaged file is moved aside and replaced', () => {
  const damages: Array<[string, (path: string) => void]> = [
    ['garbage bytes', (p) => writeFileSync(p, Buffer.from('not sqlite at all, just bytes '.repeat(300)))],
    ['a truncated file', (p) => truncateSync(p, Math.floor(statSync(p).size / 2))],
    ['a truncated file of one page', (p) => truncateSync(p, 4096)],
  ];
  for (const [what, damage] of damages) {
    test(what, () => {
      const path = populated();
      damage(path);
      const before = readFileSync(path);
      const { logger, lines } = capture();
      const cache = PresenceCache.open(path, { target: 't', logger });
      assert.equal(cache.count(), 0, 'a fresh file');
      cache.close();
      const aside = asideOf(path);
      assert.equal(aside.length, 1, 'the damaged file is kept');
      assert.match(aside[0]!, /^cache\.db\.damaged-\d{8}T\d{6}Z$/);
      assert.deepEqual(readFileSync(join(path, '..', aside[0]!)), before, 'kept as it was');
      assert.match(note(path) ?? '', /damaged file moved to cache\.db\.damaged-/);
      const warnings = lines.filter((l) => l.level === 40);
      assert.equal(warnings.length, 1, 'one warning');
      assert.match(String(warnings[0]!.msg), /damaged: moved it aside and started a fresh one/);
      // The next opener finds the fresh file: no second heal, no second warning.
      const queue = UploadQueue.open(path);
      assert.equal(queue.counts().pending, 0);
      queue.close();
      assert.equal(asideOf(path).length, 1);
    });
  }

  test(`at most ${DAMAGED_COPIES_KEPT} damaged copies are kept`, () => {
    const path = populated();
    for (let i = 0; i < DAMAGED_COPIES_KEPT + 2; i++) {
      writeFileSync(path, `garbage ${i} `.repeat(1000));
      openStateDb(path, { logger: pino({ level: 'silent' }) }).close();
    }
    assert.equal(asideOf(path).length, DAMAGED_COPIES_KEPT);
  });

  test('names within one second do not collide', () => {
    const path = join(dir, 'x.db');
    const now = new Date('2026-12-06T11:47:00.123Z');
    const first = damagedName(path, now);
    writeFileSync(first, '');
    assert.equal(first, `${path}.damaged-20261206T114700Z`);
    assert.equal(damagedName(path, now), `${path}.damaged-20261206T114700Z-2`);
  });
});

describe('a file of a newer loft', () => {
  test('is left untouched; this loft uses a file of its own beside it, with one warning', () => {
    const path = populated();
    const db = new Database(path);
    db.pragma('user_version = 99');
    db.close();
    const before = readFileSync(path);
    const { logger, lines } = capture();
    const cache = PresenceCache.open(path, { target: 't', logger });
    cache.close();
    const queue = UploadQueue.open(path, {});
    assert.equal(queue.counts().pending, 0);
    queue.close();
    assert.deepEqual(readFileSync(path), before, 'the newer file is not written');
    const own = `${path}.schema-${MIGRATIONS.length}`;
    assert.ok(existsSync(own));
    assert.match(note(own) ?? '', /newer loft/);
    assert.equal(asideOf(path).length, 0, 'nothing moved aside');
    const warnings = lines.filter((l) => l.level === 40);
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0]!.msg), /written by a newer loft: left it untouched/);
  });
});

describe('what is not damage is still refused', () => {
  test('another SQLite database is a ConfigError and left alone', () => {
    const path = join(dir, 'foreign.db');
    const db = new Database(path);
    db.exec('CREATE TABLE notes (body TEXT)');
    db.close();
    assert.throws(
      () => openStateDb(path),
      (err: unknown) => err instanceof ConfigError,
    );
    assert.equal(asideOf(path).length, 0);
  });

  test('isDatabaseCorrupt follows causes and knows extended codes', () => {
    assert.equal(isDatabaseCorrupt(Object.assign(new Error('x'), { code: 'SQLITE_CORRUPT_INDEX' })), true);
    assert.equal(isDatabaseCorrupt(new Error('y', { cause: { code: 'SQLITE_NOTADB' } })), true);
    assert.equal(isDatabaseCorrupt(Object.assign(new Error('z'), { code: 'SQLITE_BUSY' })), false);
  });
});
