// A damaged `local_cache_path` heals itself, end to end: the built CLI as a child process (the
// daemon and --enqueue), a real SQLite file damaged three ways (garbage bytes, cut in half, a
// newer loft's schema), and the recording s3rver (test/helpers/s3-server.ts) counting PUTs. Each
// time a path was queued while the daemon was stopped, so the queue that held it is lost with the
// file: the daemon must still upload it (nothing lost) and must not upload what the bucket already
// has again (nothing uploaded twice). Nix adds paths to a PRIVATE store (integration-env.ts), so
// the daemon's scan sees only this file's paths.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { logLines, runLoft, spawnLoft } from '../helpers/loft-cli.js';
import { nixBin, nixEnv, requireNix } from '../helpers/nix-env.js';
import { startIntegrationEnv, usePrivateNixStore, type IntegrationEnv } from '../helpers/integration-env.js';
import { bucketObjects, hashPartOfPath } from '../helpers/upload-env.js';
import { SIGNED_PREFIX } from '../../src/format/signed-record.js';

const nixStore = usePrivateNixStore('loft-heal-nix-');

let env: IntegrationEnv;
let config: string;
let db: string;

async function until(
  what: string,
  cond: () => Promise<boolean> | boolean,
  timeoutMs = 30_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function addPath(name: string): Promise<string> {
  const file = join(env.dir, name);
  await writeFile(file, `${name} ${Date.now()} ${Math.random()}\n`.repeat(50));
  return (await nixBin(['nix-store', '--add', file])).stdout.trim();
}

async function uploaded(path: string): Promise<boolean> {
  return (await bucketObjects(env.s3)).has(`${hashPartOfPath(path)}.narinfo`);
}

/** PUTs of each object key so far (the recording proxy in front of s3rver). */
function putsByKey(): Map<string, number> {
  const puts = new Map<string, number>();
  for (const r of env.s3.requests) if (r.method === 'PUT') puts.set(r.key, (puts.get(r.key) ?? 0) + 1);
  return puts;
}

/** Runs the daemon until `done`, then stops it; returns its stderr. */
async function daemonUntil(what: string, done: () => Promise<boolean>): Promise<string> {
  const child: ChildProcess = spawnLoft(['-c', config], { env: nixEnv() });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout!.resume();
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  try {
    await until(what, async () => child.exitCode === null && (await done()));
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}; stderr:\n${stderr}`);
  }
  child.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
  return stderr;
}

const damages: Array<[string, (path: string) => void]> = [
  ['garbage bytes', (p) => writeFileSync(p, Buffer.from('this is not SQLite '.repeat(500)))],
  // Cut after its first page (header and schema): the tables' pages are gone.
  ['a truncated file', (p) => truncateSync(p, 4096)],
  [
    'a newer schema',
    (p) => {
      const d = new Database(p);
      d.pragma('user_version = 99');
      d.close();
    },
  ],
];

describe('a damaged state database heals itself', () => {
  before(async () => {
    env = await startIntegrationEnv('loft-heal-', 'loft-heal-1');
    config = await env.config();
    db = join(env.dir, 'cache.db');
  });
  after(async () => {
    await env?.close();
    await nixStore.remove();
  });

  test('nothing lost, nothing uploaded twice, one warning', async (t) => {
    if (!requireNix(t)) return;
    const first = [await addPath('first-a'), await addPath('first-b')];
    await daemonUntil('the first uploads', async () =>
      (await Promise.all(first.map(uploaded))).every(Boolean),
    );

    for (const [what, damage] of damages) {
      const putsBefore = putsByKey();
      // Queued while the daemon is stopped: only the queue in the file knows about it.
      const queued = await addPath(`queued-${what.replace(/\W/g, '-')}`);
      const enqueue = await runLoft(['-c', config, '--enqueue', queued]);
      assert.equal(enqueue.code, 0, enqueue.stderr);
      damage(db);
      const damaged = readFileSync(db);

      const stderr = await daemonUntil(`${what}: the queued path`, () => uploaded(queued));
      const warnings = logLines(stderr).filter((l) => l.level === 40 && /local database/.test(String(l.msg)));
      assert.equal(warnings.length, 1, `${what}: one warning\n${stderr}`);
      // Nothing uploaded twice: every key PUT before this run (NARs, narinfos, nix-cache-info) is
      // PUT no more often now; only the queued path's objects are new, beside the signed record a
      // daemon with fresh state writes after reading the present narinfos (upload/signed-ledger.ts).
      for (const [key, n] of putsByKey()) {
        if (key.startsWith(SIGNED_PREFIX)) continue;
        const was = putsBefore.get(key);
        if (was !== undefined) assert.equal(n, was, `${what}: ${key} uploaded again`);
        else assert.ok(key.startsWith('nar/') || key === `${hashPartOfPath(queued)}.narinfo`, key);
      }
      const files = readdirSync(dirname(db));
      if (what === 'a newer schema') {
        assert.deepEqual(readFileSync(db), damaged, "the newer loft's file is left as it was");
        assert.ok(
          files.some((f) => /^cache\.db\.schema-\d+$/.test(f)),
          files.join(' '),
        );
      } else {
        const aside = files.filter((f) => /^cache\.db\.damaged-\d{8}T\d{6}Z(-\d+)?$/.test(f));
        assert.ok(aside.length >= 1, `${what}: the damaged file is kept: ${files.join(' ')}`);
      }
    }
  });
});
