// The uploader over hand-written fakes of our own interfaces (an in-memory object store and NARs
// from buffers), with a real SQLite presence cache. Real Nix and S3 are in test/integration.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { PresenceCache } from '../../../src/state/presence.js';
import { sha256Hash } from '../../../src/format/hash.js';
import { parseNarInfo } from '../../../src/format/narinfo.js';
import type { PathInfo, PathInfoResult } from '../../../src/format/path-info.js';
import { parseSecretKey, publicKeyOf, verifySignature } from '../../../src/format/signing-key.js';
import { fingerprintPath } from '../../../src/format/fingerprint.js';
import { InvalidPathError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import {
  largestFirst,
  referrerHeights,
  longNarBytes,
  uploadClosure,
  type UploadClosureDeps,
} from '../../../src/upload/upload-closure.js';
import { PathExtras } from '../../../src/upload/path-extras.js';
import { SignedLedger } from '../../../src/upload/signed-ledger.js';
import { signerId } from '../../../src/upload/re-sign.js';
import { MemoryBudget } from '../../../src/memory-budget.js';
import { SMALL_NAR_BYTES } from '../../../src/upload/upload-path.js';
import { NARINFO_WRITES_PER_THREAD } from '../../../src/upload/path-task.js';
import { MemoryObjectStore } from '../../helpers/memory-object-store.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

function testKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32);
  const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  return parseSecretKey(`unit-test-1:${Buffer.concat([seed, pub]).toString('base64')}\n`);
}

const S = '/nix/store/';
const path = (c: string, name: string) => `${S}${c.repeat(32)}-${name}`;
const nars = new Map<string, Buffer>();
function member(p: string, refs: string[], content = `nar of ${p}`): PathInfo {
  const nar = Buffer.from(content);
  nars.set(p, nar);
  return {
    path: p,
    hashPart: p.slice(S.length, S.length + 32),
    narHash: sha256Hash(createHash('sha256').update(nar).digest()),
    narSize: nar.length,
    references: refs,
    signatures: [],
  };
}

/**
 * Runs `around` for every NAR write, whichever way the uploader sends it: a small NAR in one
 * putBytes (upload-path.ts, SMALL_NAR_BYTES), a larger one as a stream.
 */
function aroundNarPuts(
  store: MemoryObjectStore,
  around: (key: string, put: () => Promise<void>) => Promise<void>,
) {
  const putStream = store.putStream.bind(store);
  const putBytes = store.putBytes.bind(store);
  store.putStream = (key, body, opts) =>
    key.startsWith('nar/') ? around(key, () => putStream(key, body, opts)) : putStream(key, body, opts);
  store.putBytes = (key, body, opts) =>
    key.startsWith('nar/') ? around(key, () => putBytes(key, body, opts)) : putBytes(key, body, opts);
}

/** Content for a NAR large enough to be streamed rather than sent whole. */
const streamed = (c: string) => c.repeat(SMALL_NAR_BYTES + 1000);

/** Build-log extras whose read of a derivation's log first waits for `wait(drv)`, when it gives one. */
function logsAfter(store: MemoryObjectStore, wait: (drv: string) => Promise<void> | undefined): PathExtras {
  return new PathExtras({
    store,
    signingKey: undefined,
    settings: { uploadLogs: true, writeNarListing: false, indexDebugInfo: false },
    readBuildLog: async (drv) => {
      await wait(drv);
      return Buffer.from(`log of ${drv}`);
    },
    readRealisations: () => new Map(),
    logger: silentLogger(),
    logsDone: new Set(),
  });
}

/** Calls `release` when a putBytes of a key `matches` is sent (before it is stored). */
function releaseOnPut(
  store: MemoryObjectStore,
  matches: (key: string) => boolean,
  release: () => void,
): void {
  const putBytes = store.putBytes.bind(store);
  store.putBytes = (key, body, opts) => {
    if (matches(key)) release();
    return putBytes(key, body, opts);
  };
}

async function setup(infos: PathInfo[], overrides: Partial<UploadClosureDeps> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'loft-upload-unit-'));
  dirs.push(dir);
  const store = new MemoryObjectStore();
  const cache = PresenceCache.open(join(dir, 'cache.db'), { target: 'memory://test' });
  const key = testKey();
  const byPath = new Map(infos.map((i) => [i.path, i]));
  const deps: UploadClosureDeps = {
    store,
    cache,
    queryPathInfos: (ps: string[]) => {
      const out: PathInfoResult[] = [];
      const seen = new Set<string>();
      const visit = (p: string) => {
        if (seen.has(p)) return;
        seen.add(p);
        const i = byPath.get(p);
        if (!i) return out.push({ ok: false, path: p, error: new InvalidPathError(p, `${p} is not valid`) });
        out.push({ ok: true, info: i });
        i.references.forEach(visit);
      };
      ps.forEach(visit);
      return Promise.resolve(out);
    },
    dumpNar: (p) => Readable.from([nars.get(p)!]),
    compression: 'none',
    compressionLevel: 0,
    compressionThreads: 1,
    storeDir: '/nix/store',
    signingKey: key,
    uploadThreads: 4,
    skipSignedByKeys: [],
    uploadDerivations: false,
    logger: silentLogger(),
    retryBaseMs: 1,
    ...overrides,
  };
  return { store, cache, key, deps };
}

describe('uploadClosure', () => {
  const leaf = member(path('0', 'leaf'), []);
  const mid = member(path('1', 'mid'), [path('0', 'leaf'), path('1', 'mid')]);
  const top = member(path('2', 'top'), [path('1', 'mid')]);

  test('uploads NAR then narinfo, references committed before referrers, signed', async () => {
    const { store, key, deps } = await setup([leaf, mid, top]);
    const report = await uploadClosure({ paths: [top.path], explicit: true, dryRun: false }, deps);
    assert.equal(report.complete, true);
    assert.equal(report.uploaded.length, 3);
    const narinfoPuts = store.calls
      .filter((c) => c.op === 'putBytes' && c.key.endsWith('.narinfo'))
      .map((c) => c.key);
    assert.deepEqual(
      narinfoPuts,
      ['0'.repeat(32), '1'.repeat(32), '2'.repeat(32)].map((h) => `${h}.narinfo`),
    );
    for (const m of [leaf, mid, top]) {
      const h = m.path.slice(S.length, S.length + 32);
      const narPut = store.calls.findIndex((c) => c.op === 'putBytes' && c.key.startsWith(`nar/${h}-`));
      const infoPut = store.calls.findIndex((c) => c.key === `${h}.narinfo` && c.op === 'putBytes');
      assert.ok(narPut >= 0 && narPut < infoPut, 'NAR before its narinfo');
      const ni = parseNarInfo(store.objects.get(`${h}.narinfo`)!.body.toString());
      assert.equal(store.objects.get(ni.url)!.body.toString(), nars.get(m.path)!.toString());
      const fp = fingerprintPath(m.path, m.narHash, m.narSize, m.references);
      assert.ok(verifySignature(publicKeyOf(key), fp, ni.signatures[0]!));
    }
    assert.ok(store.objects.has('nix-cache-info') === false, 'nix-cache-info is the caller hook');
  });

  test('nix-cache-info: read before the first NAR, written beside the NARs, before any narinfo', async () => {
    const events: string[] = [];
    let release!: () => void;
    const written = new Promise<void>((resolve) => (release = resolve));
    let writes = 0;
    let stored = 0;
    const { store, deps } = await setup([leaf, mid, top], {
      cacheInfo: {
        check: () => {
          events.push('check');
          return Promise.resolve();
        },
        write: () => {
          writes++;
          return written;
        },
      },
    });
    aroundNarPuts(store, async (key, put) => {
      events.push('nar');
      await put();
      // The write ends only once every NAR is stored: no narinfo may go before it.
      if (++stored === 3) {
        // Later than any narinfo would go if nothing held it back.
        setTimeout(() => {
          events.push('cache-info written');
          release();
        }, 30);
      }
    });
    const putBytes = store.putBytes.bind(store);
    store.putBytes = (key, body, opts) => {
      if (key.endsWith('.narinfo')) events.push('narinfo');
      return putBytes(key, body, opts);
    };
    const report = await uploadClosure({ paths: [top.path], explicit: true, dryRun: false }, deps);
    assert.equal(report.complete, true);
    assert.ok(events.lastIndexOf('check') < events.indexOf('nar'), 'read before the first NAR');
    assert.deepEqual(
      events.filter((e) => e !== 'check'),
      ['nar', 'nar', 'nar', 'cache-info written', 'narinfo', 'narinfo', 'narinfo'],
    );
    assert.ok(writes >= 1);
  });

  test('forceUpload uploads a present path again (NAR then narinfo), and only that one', async () => {
    const { store, deps } = await setup([leaf, mid, top]);
    await uploadClosure({ paths: [top.path], explicit: true, dryRun: false }, deps);
    const h = '1'.repeat(32);
    const narKey = parseNarInfo(store.objects.get(`${h}.narinfo`)!.body.toString()).url;
    store.objects.set(narKey, { body: Buffer.from('truncated'), contentType: 'x', lastModified: new Date() });
    store.calls.length = 0;
    const force = new Set([h]);
    const again = await uploadClosure(
      { paths: [top.path], explicit: true, dryRun: false, forceUpload: force },
      deps,
    );
    assert.deepEqual(
      again.uploaded.map((u) => u.path),
      [mid.path],
    );
    assert.equal(again.alreadyPresent, 2);
    // Every upload writes its NAR under a key of its own (format/bucket-layout.ts): the narinfo
    // now names a new, whole NAR; the damaged one is left for the prune to remove as an orphan.
    const newKey = parseNarInfo(store.objects.get(`${h}.narinfo`)!.body.toString()).url;
    assert.notEqual(newKey, narKey);
    assert.equal(store.objects.get(newKey)!.body.toString(), nars.get(mid.path)!.toString());
    const writes = store.calls.filter((c) => c.op === 'putStream' || c.op === 'putBytes').map((c) => c.key);
    assert.deepEqual(writes, [newKey, `${h}.narinfo`]);
  });

  test('a second run asks nothing of the bucket; an empty local cache learns from it', async () => {
    const { store, cache, deps } = await setup([leaf, mid, top]);
    await uploadClosure({ paths: [top.path], explicit: true, dryRun: false }, deps);
    store.calls.length = 0;
    const again = await uploadClosure({ paths: [top.path], explicit: true, dryRun: false }, deps);
    assert.equal(again.uploaded.length, 0);
    assert.equal(again.alreadyPresent, 3);
    assert.equal(store.calls.length, 0, 'no request at all');
    cache.clear();
    const relearn = await uploadClosure({ paths: [top.path], explicit: true, dryRun: false }, deps);
    assert.equal(relearn.uploaded.length, 0);
    assert.equal(relearn.learnedFromBucket, 3);
    // Who signed them is unknown after a HEAD: one GET each finds our signature, nothing is written.
    assert.deepEqual(relearn.resigned, []);
    assert.ok(store.calls.every((c) => c.op === 'head' || c.op === 'list' || c.op === 'get'));
    assert.equal(store.calls.filter((c) => c.op === 'get').length, 3);
  });

  test('a corrupt path publishes nothing and its referrers stay unpublished', async () => {
    // A small NAR is checked before it is stored; a streamed one is removed after the check.
    for (const [c, content] of [
      ['3', undefined],
      ['e', streamed('e')],
    ] as const) {
      // A size off by one: the NAR's registered size decides whether it is streamed.
      const good = member(path(c, 'bad'), [], content);
      const bad = { ...good, narSize: good.narSize - 1 };
      const user = member(path('4', 'user'), [bad.path]);
      const { store, deps } = await setup([bad, user]);
      const report = await uploadClosure({ paths: [user.path], explicit: true, dryRun: false }, deps);
      assert.equal(report.complete, false);
      assert.deepEqual(report.failed.map((f) => f.code).sort(), ['E_CORRUPT_PATH', 'E_DEPENDENCY_FAILED']);
      assert.ok(![...store.objects.keys()].some((k) => k.endsWith('.narinfo')), 'no narinfo published');
      const prefix = `nar/${c.repeat(32)}`;
      assert.ok(![...store.objects.keys()].some((k) => k.startsWith(prefix)), 'corrupt NAR removed');
      const stored = store.calls.some((call) => call.op.startsWith('put') && call.key.startsWith(prefix));
      assert.equal(stored, content !== undefined, 'a small corrupt NAR is never sent');
      assert.ok(report.failed.find((f) => f.code === 'E_CORRUPT_PATH')!.message.includes(bad.path));
    }
  });

  test('a transient failure is retried; an invalid requested path fails alone', async () => {
    let failures = 1;
    const { store, deps } = await setup([leaf]);
    store.failPut = (k) => (k.startsWith('nar/') && failures-- > 0 ? new Error('socket hang up') : undefined);
    const missing = path('9', 'gone');
    const report = await uploadClosure({ paths: [leaf.path, missing], explicit: true, dryRun: false }, deps);
    assert.equal(report.uploaded.length, 1);
    assert.deepEqual(
      report.failed.map((f) => f.path),
      [missing],
    );
  });

  test('a path waiting to commit its narinfo does not hold an upload slot', async () => {
    // One slot: the first path's narinfo PUT waits until the second path's NAR upload has begun,
    // which can only happen if the first gave its slot back before committing. The first path's
    // NAR is the larger, so largest-first starts it first: the second NAR cannot have started
    // before it, whether or not the slot is given back.
    const a = member(path('a', 'first'), [], streamed('a'));
    const b = member(path('b', 'second'), []);
    const { store, deps } = await setup([a, b], { uploadThreads: 1 });
    const narsStarted: string[] = [];
    let narOfBStarted: () => void = () => undefined;
    const started = new Promise<void>((resolve) => (narOfBStarted = resolve));
    aroundNarPuts(store, (key, put) => {
      narsStarted.push(key.slice('nar/'.length, 'nar/'.length + 1));
      if (key.startsWith(`nar/${'b'.repeat(32)}`)) narOfBStarted();
      return put();
    });
    const putBytes = store.putBytes.bind(store);
    store.putBytes = async (key, body, opts) => {
      if (key === `${'a'.repeat(32)}.narinfo`) {
        const gaveUp = new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('the second NAR never started')), 5000).unref(),
        );
        await Promise.race([started, gaveUp]);
      }
      return putBytes(key, body, opts);
    };
    const report = await uploadClosure({ paths: [a.path, b.path], explicit: true, dryRun: false }, deps);
    assert.equal(narsStarted[0], 'a', 'the larger NAR (a) starts first: only a freed slot lets b start');
    assert.deepEqual(report.failed, []);
    assert.deepEqual(narsStarted, ['a', 'b']);
    assert.equal(report.uploaded.length, 2);
  });

  test('largest NAR first, narinfos references first, no deadlock with one upload slot', async () => {
    // A small path under a large one under a small one: the large NAR must start first, while its
    // narinfo waits for the small reference and the small referrer waits for it.
    const small = member(path('5', 'small-leaf'), []);
    const large = member(path('6', 'large'), [small.path], 'x'.repeat(100_000));
    const user = member(path('7', 'small-user'), [large.path]);
    for (const uploadThreads of [1, 4]) {
      const { store, deps } = await setup([small, large, user], { uploadThreads });
      const report = await uploadClosure({ paths: [user.path], explicit: true, dryRun: false }, deps);
      assert.equal(report.complete, true);
      const hashOf = (p: string) => p.slice(S.length, S.length + 32);
      const firstNar = store.calls.find((c) => c.op.startsWith('put') && c.key.startsWith('nar/'))!;
      assert.ok(firstNar.key.startsWith(`nar/${hashOf(large.path)}-`), `largest first (${uploadThreads})`);
      const narinfoPuts = store.calls
        .filter((c) => c.op === 'putBytes' && c.key.endsWith('.narinfo'))
        .map((c) => c.key);
      assert.deepEqual(
        narinfoPuts,
        [small, large, user].map((m) => `${hashOf(m.path)}.narinfo`),
      );
    }
  });

  test('long NARs start largest first; the others keep the references-first order', () => {
    const sized = (c: string, narSize: number): PathInfo => ({ ...member(path(c, 'x'), []), narSize });
    const big = SMALL_NAR_BYTES + 1;
    // References first: leaves (the smallest) first, as in a closure of tiny text files.
    const order = [sized('0', 10), sized('1', 300), sized('2', big), sized('3', 200), sized('4', big * 3)];
    // One thread: a quarter of its share (all the bytes) is just over `big`.
    assert.deepEqual(
      largestFirst(order, 1).map((i) => i.path.charAt(S.length)),
      ['4', '0', '1', '2', '3'],
    );
    // Any NAR sent whole (up to SMALL_NAR_BYTES) keeps its place, however many threads.
    assert.deepEqual(
      largestFirst(order, 64).map((i) => i.path.charAt(S.length)),
      ['4', '2', '0', '1', '3'],
    );
    // Medium NARs, each under a quarter of a thread's share, keep the references-first order:
    // sorted by size they were spread over every layer of a closure, and nearly every narinfo
    // waited for the last NAR (bench/wan.bench.ts).
    const mb = 2 ** 20;
    const layers = [sized('5', 3 * mb), sized('6', 1 * mb), sized('7', 2 * mb), sized('8', 64 * mb)];
    assert.equal(longNarBytes(layers, 4), (70 * mb) / 16);
    assert.deepEqual(
      largestFirst(layers, 4).map((i) => i.path.charAt(S.length)),
      ['8', '5', '6', '7'],
    );
  });

  test('the NARs sent whole start by the height of their referrers, so no leaf is left for the end', () => {
    // A <- B <- C <- R and D <- E <- R: a depth-first references-first order may reach A last, and
    // then B's, C's and R's narinfos all wait for it, one round trip each.
    const a = member(path('a', 'a'), []);
    const b = member(path('b', 'b'), [a.path]);
    const c = member(path('c', 'c'), [b.path]);
    const d = member(path('d', 'd'), []);
    const e = member(path('e', 'e'), [d.path, path('9', 'present')]);
    const r = member(path('f', 'r'), [c.path, e.path, path('f', 'r')]);
    const letters = (infos: PathInfo[]) => infos.map((i) => i.path.charAt(S.length)).join('');
    assert.deepEqual(
      Object.fromEntries([...referrerHeights([d, e, a, b, c, r])].map(([p, h]) => [p.charAt(S.length), h])),
      {
        a: 3,
        b: 2,
        c: 1,
        d: 2,
        e: 1,
        f: 0,
      },
    );
    // Highest first; equal heights keep the order given.
    assert.equal(letters(largestFirst([d, e, a, b, c, r], 4)), 'adbecf');
    assert.equal(letters(largestFirst([a, b, c, d, e, r], 4)), 'abdcef');
    // A long NAR still goes first, whatever its height.
    const huge = { ...r, narSize: SMALL_NAR_BYTES * 100 };
    assert.equal(letters(largestFirst([d, e, a, b, c, huge], 4)), 'fadbec');
  });

  test("a referrer's narinfo waits for its references' narinfos, not for their build logs", async () => {
    const withDeriver = (info: PathInfo, drv: string): PathInfo => ({
      ...info,
      deriver: `${S}${drv.repeat(32)}-x.drv`,
    });
    const low = withDeriver(member(path('0', 'low'), []), 'a');
    const high = withDeriver(member(path('1', 'high'), [low.path]), 'b');
    let releaseLog!: () => void;
    const held = new Promise<void>((resolve) => (releaseLog = resolve));
    // A referrer that waited for the whole task of `low` would wait for this log: a timer ends
    // the wait so that a broken order fails the assertion instead of hanging the test.
    const timer = setTimeout(() => releaseLog(), 2000);
    const { store, deps } = await setup([low, high]);
    deps.extras = logsAfter(store, (drv) => (drv.startsWith('a') ? held : undefined));
    releaseOnPut(store, (key) => key === `${high.hashPart}.narinfo`, releaseLog);
    try {
      const report = await uploadClosure({ paths: [high.path], explicit: true, dryRun: false }, deps);
      assert.equal(report.complete, true);
    } finally {
      clearTimeout(timer);
    }
    const puts = store.calls.filter((c) => c.op === 'putBytes').map((c) => c.key);
    const at = (key: string) => puts.indexOf(key);
    assert.ok(at(`${low.hashPart}.narinfo`) < at(`${high.hashPart}.narinfo`), puts.join(' '));
    assert.ok(at(`${high.hashPart}.narinfo`) < at(`log/${'a'.repeat(32)}-x.drv`), puts.join(' '));
  });

  test('the signed record is written once the last narinfo is, beside the build logs after it', async () => {
    const low = { ...member(path('3', 'low'), []), deriver: `${S}${'c'.repeat(32)}-x.drv` };
    const high = member(path('4', 'high'), [low.path]);
    let releaseLog!: () => void;
    const held = new Promise<void>((resolve) => (releaseLog = resolve));
    // Written after the logs, the record would wait for this log: a timer ends the wait so that a
    // broken order fails the assertion instead of hanging the test.
    const timer = setTimeout(() => releaseLog(), 2000);
    const { store, key, deps } = await setup([low, high]);
    deps.signedLedger = new SignedLedger({ store, publicKey: signerId(key), logger: silentLogger() });
    deps.extras = logsAfter(store, () => held);
    releaseOnPut(store, (k) => k.startsWith('.loft/signed/'), releaseLog);
    try {
      const report = await uploadClosure({ paths: [high.path], explicit: true, dryRun: false }, deps);
      assert.equal(report.complete, true);
    } finally {
      clearTimeout(timer);
    }
    const puts = store.calls.filter((c) => c.op === 'putBytes').map((c) => c.key);
    const records = puts.filter((k) => k.startsWith('.loft/signed/'));
    assert.equal(records.length, 1, puts.join(' '));
    const at = (k: string) => puts.indexOf(k);
    assert.ok(at(`${high.hashPart}.narinfo`) < at(records[0]!), puts.join(' '));
    assert.ok(at(records[0]!) < at(`log/${'c'.repeat(32)}-x.drv`), puts.join(' '));
    // The record names both narinfos (written with their ETags), the last one too.
    const record = store.objects.get(records[0]!)!.body.toString();
    for (const h of [low.hashPart, high.hashPart]) assert.ok(record.includes(h), record);
  });

  test('narinfos ready together are written several per upload thread at once', async () => {
    // Twenty leaves, two upload threads: narinfo writes are held until every NAR is stored, so all
    // twenty narinfos are ready at the same moment; the bound on writes in flight is all that
    // stands between them and the store.
    const leaves = Array.from({ length: 20 }, (_, i) =>
      member(path(String.fromCharCode(97 + i), 'leaf'), []),
    );
    const root = member(
      path('9', 'root'),
      leaves.map((l) => l.path),
    );
    const { store, deps } = await setup([...leaves, root], { uploadThreads: 2 });
    let release!: () => void;
    const allStored = new Promise<void>((resolve) => (release = resolve));
    const timer = setTimeout(() => release(), 2000); // a broken bound fails, not hangs
    let nars = 0;
    let inFlight = 0;
    let most = 0;
    const putBytes = store.putBytes.bind(store);
    store.putBytes = async (key, body, opts) => {
      if (!key.endsWith('.narinfo')) {
        await putBytes(key, body, opts);
        if (key.startsWith('nar/') && ++nars === leaves.length + 1) release();
        return;
      }
      most = Math.max(most, ++inFlight);
      try {
        await allStored;
        await new Promise((r) => setTimeout(r, 5));
        return await putBytes(key, body, opts);
      } finally {
        inFlight--;
      }
    };
    try {
      const report = await uploadClosure({ paths: [root.path], explicit: true, dryRun: false }, deps);
      assert.equal(report.uploaded.length, 21);
    } finally {
      clearTimeout(timer);
    }
    assert.equal(most, 2 * NARINFO_WRITES_PER_THREAD);
  });

  test('NAR bodies share the memory budget: large ones take turns, small ones go beside them', async () => {
    // Six large NARs (the store buffers 300 bytes of each, against a budget of 600) and four small
    // ones (under `exempt`), six upload threads: never more than two large bodies in the store at
    // once, and the small ones start before any large one is done (a large NAR waiting for memory
    // must not sit on an upload slot).
    const large = ['a', 'b', 'c', 'd', 'e', 'f'].map((c) => member(path(c, 'large'), [], streamed(c)));
    const small = ['1', '2', '3', '4'].map((c) => member(path(c, 'small'), [], `small ${c}`));
    const { store, deps } = await setup([...large, ...small], {
      uploadThreads: 6,
      bodyMemory: { budget: new MemoryBudget(600), exempt: 100 },
    });
    store.bufferedPerUpload = (sizeHint) => Math.min(sizeHint, 300);
    let inStore = 0;
    let most = 0;
    let largeDone = 0;
    let smallAfterLarge = 0;
    aroundNarPuts(store, async (key, put) => {
      const big = large.some((m) => key.startsWith(`nar/${m.hashPart}-`));
      if (!big && largeDone > 0) smallAfterLarge++;
      if (big) most = Math.max(most, ++inStore);
      try {
        await new Promise((r) => setTimeout(r, big ? 20 : 1));
        return await put();
      } finally {
        if (big) {
          inStore--;
          largeDone++;
        }
      }
    });
    const all = [...large, ...small].map((m) => m.path);
    const report = await uploadClosure({ paths: all, explicit: true, dryRun: false }, deps);
    assert.equal(report.complete, true);
    assert.equal(report.uploaded.length, 10);
    assert.equal(most, 2, 'two large bodies at a time');
    assert.equal(smallAfterLarge, 0, 'small NARs did not wait for the large ones');
  });

  test('dry run lists what would be uploaded and writes nothing', async () => {
    const { store, deps } = await setup([leaf, mid]);
    const report = await uploadClosure({ paths: [mid.path], explicit: true, dryRun: true }, deps);
    assert.deepEqual(
      report.wouldUpload.map((i) => i.path),
      [leaf.path, mid.path],
    );
    assert.ok(store.calls.every((c) => c.op === 'head'));
  });
});
