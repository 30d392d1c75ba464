// The extras step of one path's upload (src/upload/path-extras.ts, hooked into upload-path.ts)
// over an in-memory object store: what is written, in which order relative to the NAR and the
// narinfo, each log once, and what a missing or unreadable local log does.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { encodeNar, type NarListener, type NarNode, type NarSource } from '../../../src/format/nar-writer.js';
import { sha256Hash } from '../../../src/format/hash.js';
import type { PathInfo } from '../../../src/format/path-info.js';
import { parseSecretKey } from '../../../src/format/signing-key.js';
import {
  parseRealisationV2,
  signRealisationV2,
  type RealisationV1,
} from '../../../src/format/realisation.js';
import { silentLogger } from '../../../src/log.js';
import { PathExtras, type ExtrasSettings, type PathExtrasDeps } from '../../../src/upload/path-extras.js';
import { uploadClosure } from '../../../src/upload/upload-closure.js';
import { PresenceCache } from '../../../src/state/presence.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryObjectStore } from '../../helpers/memory-object-store.js';
import { readFileSync } from 'node:fs';
import { brotliDecompressSync, gunzipSync, zstdDecompressSync } from 'node:zlib';

const KEY = parseSecretKey(
  readFileSync(new URL('../../fixtures/narinfo/TEST-ONLY-loft-test-1.secret-key', import.meta.url), 'utf8'),
);
const DRV = `${'d'.repeat(32)}-thing.drv`;
const OUT = `/nix/store/${'a'.repeat(32)}-thing`;
const REALISATION: RealisationV1 = {
  id: `sha256:${'1'.repeat(64)}!out`,
  outPath: `${'a'.repeat(32)}-thing`,
  signatures: [],
  dependentRealisations: {},
};

/** A path whose NAR is one file; the NAR encoder calls the listener as in production. */
const CONTENTS = Buffer.from('hello\n');
const fileSource: NarSource = {
  node: (): Promise<NarNode> =>
    Promise.resolve({ type: 'regular', executable: false, size: CONTENTS.length }),
  entries: () => Promise.resolve([]),
  contents: async function* () {
    await Promise.resolve();
    yield CONTENTS;
  },
};
const dumpNar = (p: string, onEntry?: NarListener) =>
  Readable.from(encodeNar(fileSource, Buffer.from(p), onEntry), { objectMode: false });

async function infoOf(extra: Partial<PathInfo> = {}): Promise<PathInfo> {
  const chunks: Buffer[] = [];
  for await (const c of dumpNar(OUT)) chunks.push(c as Buffer);
  const nar = Buffer.concat(chunks);
  return {
    path: OUT,
    hashPart: 'a'.repeat(32),
    narHash: sha256Hash(createHash('sha256').update(nar).digest()),
    narSize: nar.length,
    references: [],
    signatures: [],
    deriver: `/nix/store/${DRV}`,
    ca: 'fixed:r:sha256:0000000000000000000000000000000000000000000000000000',
    ...extra,
  };
}

const ALL_ON: ExtrasSettings = { uploadLogs: true, writeNarListing: true, indexDebugInfo: true };

function extras(store: MemoryObjectStore, over: Partial<PathExtrasDeps> = {}): PathExtras {
  return new PathExtras({
    store,
    signingKey: KEY,
    settings: ALL_ON,
    readBuildLog: () => Promise.resolve(Buffer.from('the log\n')),
    readRealisations: (ps) => new Map(ps.map((p) => [p, { v1: [REALISATION], v2: [] }])),
    logger: silentLogger(),
    logsDone: new Set(),
    ...over,
  });
}

/** One path through the real closure uploader (path-task.ts decides where the extras go). */
async function upload(store: MemoryObjectStore, ex: PathExtras, info?: PathInfo | PathInfo[]) {
  const all = info === undefined ? [await infoOf()] : Array.isArray(info) ? info : [info];
  const dir = await mkdtemp(join(tmpdir(), 'loft-extras-unit-'));
  const cache = PresenceCache.open(join(dir, 'cache.db'), { target: 'memory://extras' });
  try {
    const report = await uploadClosure(
      { paths: all.map((i) => i.path), explicit: true, dryRun: false },
      {
        store,
        cache,
        queryPathInfos: () => Promise.resolve(all.map((i) => ({ ok: true as const, info: i }))),
        dumpNar: (p, _memory, onEntry) => dumpNar(p, onEntry),
        compression: 'none',
        compressionLevel: 0,
        compressionThreads: 1,
        storeDir: '/nix/store',
        signingKey: KEY,
        uploadThreads: 1,
        skipSignedByKeys: [],
        uploadDerivations: false,
        logger: silentLogger(),
        retryBaseMs: 1,
        attempts: 1,
        extras: ex,
      },
    );
    if (report.failed.length > 0) throw new Error(report.failed[0]!.message);
    return report.uploaded[0]!;
  } finally {
    cache.close();
    await rm(dir, { recursive: true, force: true });
  }
}

void describe('extras of one path', () => {
  void test('listing after the NAR, realisation and log after the narinfo', async () => {
    const store = new MemoryObjectStore();
    await upload(store, extras(store));
    const puts = store.calls
      .filter((c) => c.op !== 'head' && c.op !== 'get')
      .map((c) => c.key.replace(/^nar\/.*/, 'nar'));
    assert.deepEqual(puts, [
      'nar',
      `${'a'.repeat(32)}.ls`,
      `${'a'.repeat(32)}.narinfo`,
      `realisations/${REALISATION.id}.doi`,
      `build-trace-v2/${DRV}/out.doi`,
      `log/${DRV}`,
    ]);
    const ls = JSON.parse(store.objects.get(`${'a'.repeat(32)}.ls`)!.body.toString()) as unknown;
    assert.deepEqual(ls, { version: 1, root: { type: 'regular', size: 6, narOffset: 96 } });
    assert.equal(store.objects.get(`log/${DRV}`)!.contentType, 'text/plain; charset=utf-8');
    const r = JSON.parse(
      store.objects.get(`realisations/${REALISATION.id}.doi`)!.body.toString(),
    ) as RealisationV1;
    assert.equal(r.signatures.length, 1);
    // The v2 entry, keyed by the deriver, signed over the v2 fingerprint (Nix >= 2.35).
    const v2 = store.objects.get(`build-trace-v2/${DRV}/out.doi`)!.body.toString();
    const parsed = parseRealisationV2(v2, { drvPath: DRV, outputName: 'out' });
    assert.equal(parsed.outPath, REALISATION.outPath);
    assert.deepEqual(parsed.signatures, signRealisationV2({ ...parsed, signatures: [] }, KEY).signatures);
  });

  void test('a v2 entry the database recorded is written once, not again from the v1 row', async () => {
    const store = new MemoryObjectStore();
    const recorded = { drvPath: DRV, outputName: 'out', outPath: REALISATION.outPath, signatures: [] };
    const readRealisations = (ps: readonly string[]) =>
      new Map(ps.map((p) => [p, { v1: [REALISATION], v2: [recorded] }]));
    await upload(store, extras(store, { readRealisations }));
    const v2Puts = store.calls.filter((c) => c.op === 'putBytes' && c.key.startsWith('build-trace-v2/'));
    assert.deepEqual(
      v2Puts.map((c) => c.key),
      [`build-trace-v2/${DRV}/out.doi`],
    );
  });

  void test("one read of Nix's realisations for all the content-addressed paths of an upload", async () => {
    const store = new MemoryObjectStore();
    const hashes = ['a', 'b', 'c'].map((c) => c.repeat(32));
    const infos = await Promise.all(
      hashes.map((h) => infoOf({ path: `/nix/store/${h}-thing`, hashPart: h })),
    );
    delete infos[2]!.ca; // input-addressed: never asked about
    const asked: string[][] = [];
    const readRealisations = (ps: readonly string[]) => {
      asked.push([...ps].sort());
      // A realisation per path, named after it, so each is seen to reach its own path.
      return new Map(
        ps.map((p) => [p, { v1: [{ ...REALISATION, id: `sha256:${p.charAt(11).repeat(64)}!out` }], v2: [] }]),
      );
    };
    await upload(store, extras(store, { readRealisations }), infos);
    assert.deepEqual(asked, [infos.slice(0, 2).map((i) => i.path)], 'one read, of the two CA paths');
    const written = [...store.objects.keys()].filter((k) => k.startsWith('realisations/')).sort();
    assert.deepEqual(written, [
      `realisations/sha256:${'a'.repeat(64)}!out.doi`,
      `realisations/sha256:${'b'.repeat(64)}!out.doi`,
    ]);
  });

  void test('no deriver: the v1 realisation only, no build-trace-v2 entry', async () => {
    const store = new MemoryObjectStore();
    const info = await infoOf();
    delete info.deriver;
    await upload(store, extras(store), info);
    const keys = [...store.objects.keys()];
    assert.ok(keys.includes(`realisations/${REALISATION.id}.doi`), keys.join(' '));
    assert.ok(!keys.some((k) => k.startsWith('build-trace-v2/')), keys.join(' '));
  });

  void test('defaults: a log, no listing; a path without CA gets no realisation', async () => {
    const store = new MemoryObjectStore();
    const ex = extras(store, {
      settings: { uploadLogs: true, writeNarListing: false, indexDebugInfo: false },
    });
    const info = await infoOf();
    delete info.ca;
    await upload(store, ex, info);
    const keys = [...store.objects.keys()].filter((k) => !k.startsWith('nar/')).sort();
    assert.deepEqual(keys, [`${'a'.repeat(32)}.narinfo`, `log/${DRV}`]);
  });

  void test('log_compression: the log compressed with its Content-Encoding; none by default', async () => {
    const decode = { br: brotliDecompressSync, zstd: zstdDecompressSync, gzip: gunzipSync } as const;
    for (const method of ['br', 'zstd', 'gzip'] as const) {
      const store = new MemoryObjectStore();
      await upload(store, extras(store, { settings: { ...ALL_ON, logCompression: method } }));
      const log = store.objects.get(`log/${DRV}`)!;
      assert.equal(log.contentEncoding, method);
      assert.equal(log.contentType, 'text/plain; charset=utf-8');
      assert.equal(decode[method](log.body).toString(), 'the log\n');
    }
    const store = new MemoryObjectStore();
    await upload(store, extras(store, { settings: { ...ALL_ON, logCompression: 'none' } }));
    const log = store.objects.get(`log/${DRV}`)!;
    assert.equal(log.contentEncoding, undefined);
    assert.equal(log.body.toString(), 'the log\n');
  });

  void test('upload_logs off writes no log', async () => {
    const store = new MemoryObjectStore();
    await upload(store, extras(store, { settings: { ...ALL_ON, uploadLogs: false } }));
    assert.ok(![...store.objects.keys()].some((k) => k.startsWith('log/')));
  });

  void test('a log is written once per derivation, and not over one the cache has', async () => {
    const store = new MemoryObjectStore();
    const logsDone = new Set<string>();
    let reads = 0;
    const readBuildLog = () => {
      reads++;
      return Promise.resolve(Buffer.from('log'));
    };
    const ex = extras(store, { logsDone, readBuildLog });
    await ex.afterNarInfo(await infoOf());
    await ex.afterNarInfo(
      await infoOf({ path: `/nix/store/${'b'.repeat(32)}-thing-dev`, hashPart: 'b'.repeat(32) }),
    );
    assert.equal(store.calls.filter((c) => c.key === `log/${DRV}` && c.op === 'putBytes').length, 1);
    const other = new MemoryObjectStore();
    other.objects.set(`log/${DRV}`, {
      body: Buffer.from('old'),
      contentType: 'text/plain',
      lastModified: new Date(),
    });
    await extras(other, { readBuildLog }).afterNarInfo(await infoOf());
    assert.equal(other.objects.get(`log/${DRV}`)!.body.toString(), 'old');
    assert.equal(reads, 1);
  });

  void test('the cache is asked about the log before the narinfo is written, not after it', async () => {
    const store = new MemoryObjectStore();
    await upload(store, extras(store));
    const calls = store.calls.map((c) => `${c.op} ${c.key.replace(/^nar\/.*/, 'nar')}`);
    const head = calls.indexOf(`head log/${DRV}`);
    assert.ok(head >= 0 && head < calls.indexOf(`putBytes ${'a'.repeat(32)}.narinfo`), calls.join(', '));
    assert.equal(calls.filter((c) => c === `head log/${DRV}`).length, 1, 'asked once');
    assert.ok(store.objects.has(`log/${DRV}`));
    // A log the early question found is not written; a question that failed is asked again.
    const present = new MemoryObjectStore();
    present.objects.set(`log/${DRV}`, {
      body: Buffer.from('old'),
      contentType: 'text/plain',
      lastModified: new Date(),
    });
    await upload(present, extras(present));
    assert.equal(present.objects.get(`log/${DRV}`)!.body.toString(), 'old');
    const flaky = new MemoryObjectStore();
    const head1 = flaky.head.bind(flaky);
    let heads = 0;
    flaky.head = (key) => {
      if (!key.startsWith('log/')) return head1(key);
      return ++heads === 1 ? Promise.reject(new Error('reset')) : head1(key);
    };
    await upload(flaky, extras(flaky));
    assert.equal(heads, 2);
    assert.ok(flaky.objects.has(`log/${DRV}`));
  });

  void test('a presence listing that found no log/ folder spares the log HEADs; one that found it does not', async () => {
    // More paths than one wave of HEADs, so the presence check lists the top level.
    const ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';
    const many = await Promise.all(
      Array.from({ length: 60 }, (_, i) => {
        const h = ALPHABET[i % 32]!.repeat(31) + ALPHABET[Math.floor(i / 32)]!;
        return infoOf({ path: `/nix/store/${h}-thing`, hashPart: h });
      }),
    );
    const empty = new MemoryObjectStore();
    await upload(empty, extras(empty), many);
    assert.equal(empty.calls.filter((c) => c.op === 'head' && c.key.startsWith('log/')).length, 0);
    assert.equal(empty.calls.filter((c) => c.op === 'putBytes' && c.key === `log/${DRV}`).length, 1);
    // Another derivation's log makes the folder exist: this one is asked about, and kept.
    const withLogs = new MemoryObjectStore();
    for (const key of ['log/other.drv', `log/${DRV}`])
      withLogs.objects.set(key, {
        body: Buffer.from('old'),
        contentType: 'text/plain',
        lastModified: new Date(),
      });
    await upload(withLogs, extras(withLogs), many);
    assert.equal(withLogs.calls.filter((c) => c.op === 'head' && c.key === `log/${DRV}`).length, 1);
    assert.equal(withLogs.objects.get(`log/${DRV}`)!.body.toString(), 'old');
  });

  void test('an unreadable local log is skipped with a warning; a failed write fails the path', async () => {
    const store = new MemoryObjectStore();
    const warnings: string[] = [];
    const logger = silentLogger();
    logger.warn = ((_o: unknown, msg: string) => void warnings.push(msg)) as unknown as typeof logger.warn;
    const ex = extras(store, {
      logger,
      readBuildLog: () => Promise.reject(new Error('bzip2 is not installed')),
    });
    await ex.afterNarInfo(await infoOf());
    assert.deepEqual(warnings, ['build log not uploaded: it cannot be read']);
    const failing = new MemoryObjectStore();
    failing.failPut = (k) => (k.startsWith('realisations/') ? new Error('boom') : undefined);
    await assert.rejects(upload(failing, extras(failing)), /boom/);
  });
});
