// Prune benchmark: a bucket of 20,000 synthetic paths (valid narinfos with random references to
// earlier paths, small NARs, LastModified spread over 90 days, a few orphans) written straight into
// s3rver (its own process) through S3ObjectStore, then pruned twice with loft's pruner in this
// process. Reports the requests each prune made (counted by a recording proxy) and its time; the
// second prune, on a bucket the first one left unchanged, must read no narinfo.
//   node --import tsx bench/prune.bench.ts [--paths 20000] [--seed 1]
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pLimit from 'p-limit';
import { PresenceCache } from '../src/state/presence.js';
import { encodeNixBase32 } from '../src/format/nix-base32.js';
import { silentLogger } from '../src/log.js';
import { GIB, planPrune } from '../src/prune/policy.js';
import { PruneDb } from '../src/state/prune-db.js';
import { runPrune, type PruneResult } from '../src/prune/prune-run.js';
import type { ObjectStore } from '../src/storage/object-store.js';
import { S3ObjectStore } from '../src/storage/s3-object-store.js';
import { startForwardingProxy, type RecordedRequest } from '../test/helpers/s3-server.js';
import { startS3rverProcess } from './lib/s3rver-process.js';

const { values: opt } = parseArgs({
  options: { paths: { type: 'string', default: '20000' }, seed: { type: 'string', default: '1' } },
});
const N = Number(opt.paths);
const DAY = 86_400_000;
const BUCKET = 'prune-bench';
let seed = Number(opt.seed);
/** A small deterministic PRNG (mulberry32), so runs are comparable. */
function random(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

interface SynthPath {
  hash: string;
  name: string;
  refs: number[];
  ageDays: number;
  narKey: string;
  nar: Buffer;
}

function synthesize(): SynthPath[] {
  const paths: SynthPath[] = [];
  for (let i = 0; i < N; i++) {
    const hash = encodeNixBase32(randomBytes(20));
    const refs =
      i === 0
        ? []
        : [...new Set(Array.from({ length: Math.floor(random() * 6) }, () => Math.floor(random() * i)))];
    const nar = randomBytes(200 + Math.floor(random() * 800));
    const narKey = `nar/${hash}-${encodeNixBase32(randomBytes(32))}.nar.zst`;
    paths.push({ hash, name: `bench-${i}`, refs, ageDays: random() * 90, narKey, nar });
  }
  return paths;
}

function narinfoText(p: SynthPath, all: SynthPath[]): string {
  const refs = p.refs.map((r) => `${all[r]!.hash}-${all[r]!.name}`);
  return [
    `StorePath: /nix/store/${p.hash}-${p.name}`,
    `URL: ${p.narKey}`,
    'Compression: zstd',
    `FileHash: sha256:${encodeNixBase32(randomBytes(32))}`,
    `FileSize: ${p.nar.length}`,
    `NarHash: sha256:${encodeNixBase32(randomBytes(32))}`,
    `NarSize: ${p.nar.length * 3}`,
    `References: ${refs.join(' ')}`,
    `Sig: bench-1:${randomBytes(64).toString('base64')}`,
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'loft-prune-bench-'));
  const s3rver = await startS3rverProcess(join(dir, 's3'), [BUCKET]);
  const proxy = await startForwardingProxy(s3rver.endpoint);
  const store = new S3ObjectStore({
    bucket: BUCKET,
    region: 'us-east-1',
    endpoint: proxy.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    extraHeaders: {},
    partSizeBytes: 5 * 1024 * 1024,
  });
  try {
    const paths = synthesize();
    const t0 = performance.now();
    await fill(store, paths, join(dir, 's3', BUCKET));
    console.log(
      `wrote ${N} paths (${2 * N + 101} objects) in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
    );
    const cache = PresenceCache.open(join(dir, 'cache.db'), { target: 'bench' });
    const db = PruneDb.open(cache.path, cache.target);
    const timed = timeStore(store);
    const deps = { store: timed.store, cache, db, storeDir: '/nix/store', logger: silentLogger() };
    let bucketBytes = 0;
    for await (const o of store.list('')) bucketBytes += o.size;
    const settings = {
      retentionDays: 30,
      targetPercentage: 80,
      orphanGraceHours: 24,
      maxSizeGb: (0.5 * bucketBytes) / GIB,
      graceHours: 0,
    };
    console.log(
      '| prune | time | reading + planning | deleting | requests | ListObjectsV2 | GetObject | DeleteObjects | narinfos read | paths deleted (expired / size) | orphans | kept because referenced | plan only |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const round of ['first', 'second (unchanged bucket)']) {
      const mark = proxy.requests.length;
      timed.reset();
      const start = performance.now();
      const result = await runPrune(deps, { dryRun: false, host: 'bench', settings });
      const ms = performance.now() - start;
      const planMs = timePlan(result, settings);
      const phases = `${((ms - timed.deleteMs) / 1000).toFixed(2)} s | ${(timed.deleteMs / 1000).toFixed(2)} s`;
      console.log(row(round, ms, phases, proxy.requests.slice(mark), result, planMs));
    }
    db.close();
    cache.close();
  } finally {
    await store.close();
    await proxy.close();
    await s3rver.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function fill(store: S3ObjectStore, paths: SynthPath[], bucketDir: string): Promise<void> {
  const limit = pLimit(64);
  const put = (key: string, body: Buffer | string) =>
    limit(() => store.putBytes(key, body, { contentType: 'x' }));
  await put('nix-cache-info', 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n');
  await Promise.all(paths.map((p) => put(p.narKey, p.nar)));
  await Promise.all(paths.map((p) => put(`${p.hash}.narinfo`, narinfoText(p, paths))));
  const orphans = Array.from({ length: 100 }, (_, i) => `nar/orphan-${i}.nar.zst`);
  await Promise.all(orphans.map((k) => put(k, randomBytes(500))));
  // s3rver takes LastModified from the object file's mtime: spread the uploads over 90 days.
  const age = (key: string, days: number) => {
    const when = new Date(Date.now() - days * DAY);
    const parts = key.split('/');
    return limit(() =>
      utimes(join(bucketDir, ...parts.slice(0, -1), `${parts.at(-1)}._S3rver_object`), when, when),
    );
  };
  await Promise.all(paths.flatMap((p) => [age(p.narKey, p.ageDays), age(`${p.hash}.narinfo`, p.ageDays)]));
  await Promise.all(orphans.map((k, i) => age(k, i % 2 === 0 ? 2 : 0)));
}

function timePlan(result: PruneResult, settings: Parameters<typeof planPrune>[0]['settings']): number {
  const inv = result.inventory!;
  const start = performance.now();
  planPrune({ ...inv, now: Date.now(), settings });
  return performance.now() - start;
}

function row(
  round: string,
  ms: number,
  phases: string,
  requests: RecordedRequest[],
  r: PruneResult,
  planMs: number,
): string {
  const count = (f: (q: RecordedRequest) => boolean) => requests.filter(f).length;
  const list = count((q) => q.method === 'GET' && q.key === '');
  const get = count((q) => q.method === 'GET' && q.key !== '');
  const del = count((q) => q.method === 'POST' && q.query.has('delete'));
  const plan = r.policy!;
  const by = (reason: string) => plan.paths.filter((p) => p.reason === reason).length;
  return `| ${round} | ${(ms / 1000).toFixed(2)} s | ${phases} | ${requests.length} | ${list} | ${get} | ${del} | ${r.counts.narinfosRead} | ${plan.paths.length} (${by('expired')} / ${by('size')}) | ${plan.orphans.length} | ${plan.keptBecauseReferenced.length} | ${planMs.toFixed(0)} ms |`;
}

/**
 * Wall time spent in deleteMany (sequential batches), to tell it from the reading: s3rver re-reads
 * the whole directory after each key it deletes, so its deletes slow down as the bucket grows.
 */
function timeStore(inner: S3ObjectStore) {
  const t = { deleteMs: 0 };
  const store: ObjectStore = {
    description: inner.description,
    head: (k, s) => inner.head(k, s),
    get: (k, s) => inner.get(k, s),
    putBytes: (k, b, o) => inner.putBytes(k, b, o),
    putStream: (k, b, o) => inner.putStream(k, b, o),
    list: (prefix, s) => inner.list(prefix, s),
    deleteMany: async (keys, s) => {
      const start = performance.now();
      await inner.deleteMany(keys, s);
      t.deleteMs += performance.now() - start;
    },
    close: () => inner.close(),
  };
  return {
    store,
    get deleteMs() {
      return t.deleteMs;
    },
    reset() {
      t.deleteMs = 0;
    },
  };
}

await main();
