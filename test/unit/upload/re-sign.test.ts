// Re-signing present narinfos (src/upload/re-sign.ts) over an in-memory object store and a real
// SQLite presence cache: what gets signed, what is left alone, and what must be uploaded after all.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PresenceCache } from '../../../src/state/presence.js';
import { fingerprintPath } from '../../../src/format/fingerprint.js';
import { sha256Hash } from '../../../src/format/hash.js';
import { parseNarInfo, renderNarInfo } from '../../../src/format/narinfo.js';
import type { PathInfo } from '../../../src/format/path-info.js';
import {
  parseSecretKey,
  publicKeyOf,
  signFingerprint,
  verifySignature,
  type SecretKey,
} from '../../../src/format/signing-key.js';
import { silentLogger } from '../../../src/log.js';
import { ensureSignedByUs, signerId } from '../../../src/upload/re-sign.js';
import { signedRecordPrefix } from '../../../src/format/signed-record.js';
import { SignedLedger } from '../../../src/upload/signed-ledger.js';
import { etagOf, MemoryObjectStore } from '../../helpers/memory-object-store.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

function key(name: string): SecretKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32);
  const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  return parseSecretKey(`${name}:${Buffer.concat([seed, pub]).toString('base64')}`);
}

const path = (c: string) => `/nix/store/${c.repeat(32)}-p${c}`;
function info(p: string, refs: string[] = []): PathInfo {
  const nar = Buffer.from(`nar of ${p}`);
  const narHash = sha256Hash(createHash('sha256').update(nar).digest());
  return {
    path: p,
    hashPart: p.slice(11, 43),
    narHash,
    narSize: nar.length,
    references: refs,
    signatures: [],
  };
}
const fp = (i: PathInfo) => fingerprintPath(i.path, i.narHash, i.narSize, i.references);

/** Stores a narinfo for `i` with `sigs`, as another uploader would have. */
function publish(store: MemoryObjectStore, i: PathInfo, sigs: string[], narSize = i.narSize): void {
  const text = renderNarInfo({
    storePath: i.path,
    url: `nar/${i.path.slice(11, 43)}.nar`,
    compression: 'none',
    narHash: i.narHash,
    narSize,
    references: i.references.map((r) => r.slice('/nix/store/'.length)),
    signatures: sigs,
    extra: [],
  });
  store.objects.set(`${i.path.slice(11, 43)}.narinfo`, {
    body: Buffer.from(text),
    contentType: 'text/x-nix-narinfo',
    lastModified: new Date(),
  });
}

async function setup(ours: SecretKey) {
  const dir = await mkdtemp(join(tmpdir(), 'loft-resign-unit-'));
  dirs.push(dir);
  const store = new MemoryObjectStore();
  const cache = PresenceCache.open(join(dir, 'cache.db'), { target: 'memory://test' });
  const deps = { store, cache, storeDir: '/nix/store', signingKey: ours, logger: silentLogger() };
  return { store, cache, deps };
}

describe('ensureSignedByUs', () => {
  test('adds our signature in front, keeps other keys, drops an old one under our name', async () => {
    const ours = key('cache-1');
    const other = key('other-1');
    const oldOurs = key('cache-1');
    const { store, cache, deps } = await setup(ours);
    const a = info(path('a'));
    publish(store, a, [signFingerprint(oldOurs, fp(a)), signFingerprint(other, fp(a))]);
    cache.learn([a.path.slice(11, 43)]);
    const r = await ensureSignedByUs([a], deps);
    assert.deepEqual([r.resigned, [...r.reupload], r.requests], [[a.path], [], 2]);
    const sigs = parseNarInfo(
      store.objects.get(`${a.path.slice(11, 43)}.narinfo`)!.body.toString(),
    ).signatures;
    assert.equal(sigs.length, 2);
    assert.ok(verifySignature(publicKeyOf(ours), fp(a), sigs[0]!));
    assert.ok(verifySignature(publicKeyOf(other), fp(a), sigs[1]!));
    // Recorded: the next run asks nothing.
    store.calls.length = 0;
    const again = await ensureSignedByUs([a], deps);
    assert.deepEqual([again.resigned, again.requests, store.calls], [[], 0, []]);
  });

  test('reads up to 48 narinfos at once: 400 present paths cost 9 round trips, not 25', async () => {
    const ours = key('cache-1');
    const { store, cache, deps } = await setup(ours);
    const hex = (i: number) => i.toString(16).padStart(4, '0');
    const infos = Array.from({ length: 400 }, (_, i) =>
      info(`/nix/store/${'0'.repeat(28)}${hex(i).replace(/e/g, 'x')}-p${i}`),
    );
    for (const i of infos) publish(store, i, [signFingerprint(ours, fp(i))]);
    cache.learn(infos.map((i) => i.hashPart));
    let inFlight = 0;
    let most = 0;
    const get = store.get.bind(store);
    store.get = async (k: string) => {
      most = Math.max(most, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, 2));
      inFlight--;
      return get(k);
    };
    const r = await ensureSignedByUs(infos, deps);
    assert.equal(r.requests, 400);
    assert.equal(most, 48);
  });

  test('already signed by us: one GET, no PUT; known signer: nothing at all', async () => {
    const ours = key('cache-1');
    const { store, cache, deps } = await setup(ours);
    const a = info(path('a'));
    const b = info(path('b'));
    publish(store, a, [signFingerprint(ours, fp(a))]);
    publish(store, b, []);
    cache.learn([a.path.slice(11, 43)]);
    cache.add(b.path.slice(11, 43), { signer: signerId(ours) });
    const r = await ensureSignedByUs([a, b], deps);
    assert.deepEqual([r.resigned, r.requests], [[], 1]);
    assert.deepEqual(store.calls, [{ op: 'get', key: `${a.path.slice(11, 43)}.narinfo` }]);
  });

  test('a narinfo that is gone, unreadable or for other contents is uploaded, never signed', async () => {
    const ours = key('cache-1');
    const { store, cache, deps } = await setup(ours);
    const gone = info(path('a'));
    const garbage = info(path('b'));
    const differs = info(path('c'));
    const otherRefs = info(path('d'), [path('a')]);
    publish(store, garbage, []);
    store.objects.get(`${garbage.path.slice(11, 43)}.narinfo`)!.body = Buffer.from(
      '\u0000\u0001 not a narinfo',
    );
    publish(store, differs, [], differs.narSize + 1);
    publish(store, { ...otherRefs, references: [] }, []);
    const all = [gone, garbage, differs, otherRefs];
    cache.learn(all.map((i) => i.path.slice(11, 43)));
    const r = await ensureSignedByUs(all, deps);
    assert.deepEqual(r.resigned, []);
    assert.deepEqual([...r.reupload].sort(), all.map((i) => i.path).sort());
    assert.ok(!store.calls.some((c) => c.op === 'putBytes'), 'nothing written');
  });
});

describe('ensureSignedByUs with the bucket signed records (src/upload/signed-ledger.ts)', () => {
  const narinfoOf = (i: PathInfo) => `${i.hashPart}.narinfo`;
  const etagNow = (store: MemoryObjectStore, i: PathInfo) => etagOf(store.objects.get(narinfoOf(i))!.body);

  /** A first run with empty state signs and records; returns a second run's deps with a fresh cache. */
  async function recorded(ours: SecretKey, infos: PathInfo[]) {
    const first = await setup(ours);
    for (const i of infos) publish(first.store, i, [signFingerprint(ours, fp(i))]);
    first.cache.learn(infos.map((i) => i.hashPart));
    const writer = new SignedLedger({
      store: first.store,
      publicKey: signerId(ours),
      logger: silentLogger(),
    });
    await ensureSignedByUs(infos, { ...first.deps, ledger: writer, etags: new Map() });
    await writer.flush();
    // The next run: a runner with empty local state, the same bucket.
    const second = await setup(ours);
    const ledger = new SignedLedger({
      store: first.store,
      publicKey: signerId(ours),
      logger: silentLogger(),
    });
    await ledger.load();
    second.cache.learn(infos.map((i) => i.hashPart));
    const etags = new Map(infos.map((i) => [i.hashPart, etagNow(first.store, i)]));
    first.store.calls.length = 0;
    return { store: first.store, deps: { ...second.deps, store: first.store, ledger, etags } };
  }

  test('listed ETag equal to the recorded one: no GET, and the signer is remembered locally', async () => {
    const ours = key('cache-1');
    const a = info(path('a'));
    const b = info(path('b'));
    const { store, deps } = await recorded(ours, [a, b]);
    const r = await ensureSignedByUs([a, b], deps);
    assert.deepEqual([r.requests, r.vouched, r.resigned, [...r.reupload]], [0, 2, [], []]);
    assert.deepEqual(store.calls, []);
    assert.deepEqual(deps.cache.notSignedBy([a.hashPart, b.hashPart], signerId(ours)), []);
  });

  test('a narinfo another writer replaced (new ETag, no signature of ours) is read and re-signed', async () => {
    const ours = key('cache-1');
    const other = key('other-1');
    const a = info(path('a'));
    const b = info(path('b'));
    const { store, deps } = await recorded(ours, [a, b]);
    publish(store, a, [signFingerprint(other, fp(a))]);
    const etags = new Map(deps.etags);
    etags.set(a.hashPart, etagNow(store, a));
    const r = await ensureSignedByUs([a, b], { ...deps, etags });
    assert.deepEqual([r.resigned, r.vouched], [[a.path], 1]);
    assert.deepEqual(
      store.calls.map((c) => c.op),
      ['get', 'putBytes'],
    );
    const sigs = parseNarInfo(store.objects.get(narinfoOf(a))!.body.toString()).signatures;
    assert.ok(verifySignature(publicKeyOf(ours), fp(a), sigs[0]!));
  });

  test('another fingerprint (our Nix registered other contents) is read, never vouched for', async () => {
    const ours = key('cache-1');
    const a = info(path('a'));
    const { store, deps } = await recorded(ours, [a]);
    const rebuilt = { ...a, narSize: a.narSize + 1 };
    const r = await ensureSignedByUs([rebuilt], deps);
    assert.deepEqual([r.vouched ?? 0, [...r.reupload]], [0, [a.path]]);
    assert.deepEqual(
      store.calls.map((c) => c.op),
      ['get'],
    );
  });

  test('no ETag from the presence check, or no record: every narinfo is read', async () => {
    const ours = key('cache-1');
    const a = info(path('a'));
    const { store, deps } = await recorded(ours, [a]);
    const r = await ensureSignedByUs([a], { ...deps, etags: new Map() });
    assert.deepEqual([r.requests, r.vouched ?? 0], [1, 0]);
    store.calls.length = 0;
    const empty = new SignedLedger({
      store: new MemoryObjectStore(),
      publicKey: signerId(ours),
      logger: silentLogger(),
    });
    await empty.load();
    deps.cache.clear();
    deps.cache.learn([a.hashPart]);
    const r2 = await ensureSignedByUs([a], { ...deps, ledger: empty });
    assert.deepEqual([r2.requests, r2.vouched ?? 0], [1, 0]);
  });

  test('a corrupt record or one of another key is ignored: GETs, no error', async () => {
    const ours = key('cache-1');
    const a = info(path('a'));
    const { store, deps } = await recorded(ours, [a]);
    const prefix = signedRecordPrefix(signerId(ours));
    const keys = [...store.objects.keys()].filter((k) => k.startsWith(prefix));
    assert.equal(keys.length, 1);
    store.objects.get(keys[0]!)!.body = Buffer.from('{"v":1,"kind":"signed","key":"x:y","narinfos":{}}');
    store.objects.set(`${prefix}zzz.json`, {
      body: Buffer.from('not json'),
      contentType: 'application/json',
      lastModified: new Date(),
    });
    const ledger = new SignedLedger({ store, publicKey: signerId(ours), logger: silentLogger() });
    await ledger.load();
    deps.cache.clear();
    deps.cache.learn([a.hashPart]);
    const r = await ensureSignedByUs([a], { ...deps, ledger });
    assert.deepEqual([r.requests, r.vouched ?? 0, r.resigned], [1, 0, []]);
  });
});
