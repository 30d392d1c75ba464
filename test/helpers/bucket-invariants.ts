// What a binary cache must satisfy whatever happened while it was written, checked by reading the
// bucket directly (straight at the server, not through loft or a fault proxy): nix-cache-info is
// there and names our store directory; every narinfo parses and names its own store path; its
// URL's NAR exists with FileSize bytes hashing to FileHash; the NAR, decompressed by the zstd/xz
// command-line tools (not loft's codecs), has NarSize bytes hashing to NarHash; every reference has
// a narinfo; our signature verifies. Nix itself refuses a narinfo that breaks any of these
// (seen with Nix 2.8 substituting over HTTP: it checks NarHash and signatures and refuses partial
// closures), so a violation is a cache users would see broken.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import pLimit from 'p-limit';
import { fingerprintPath } from '../../src/format/fingerprint.js';
import { formatHashNix32, type Hash } from '../../src/format/hash.js';
import { parseNarInfo, type NarInfo } from '../../src/format/narinfo.js';
import { parseNixCacheInfo } from '../../src/format/nix-cache-info.js';
import { parsePublicKey, verifySignature, type PublicKey } from '../../src/format/signing-key.js';
import { S3ObjectStore } from '../../src/storage/s3-object-store.js';
import { hashPartOfNarinfoKey } from '../../src/format/bucket-layout.js';
import { storeOptionsFor, type RecordedRequest, type TestS3 } from './s3-server.js';

export interface BucketCheck {
  /** One line per broken invariant; empty for a consistent cache. */
  violations: string[];
  narinfos: number;
  /** The StorePath of every narinfo that parsed, sorted. */
  storePaths: string[];
  /** NARs downloaded, decompressed and hashed. */
  narsVerified: number;
  objects: number;
}

export interface CheckOptions {
  /** `name:base64` as Nix prints it; every narinfo must carry a valid signature by it. */
  publicKey?: string;
  storeDir?: string;
}

export async function checkBucket(s3: TestS3, opts: CheckOptions = {}): Promise<BucketCheck> {
  const store = new S3ObjectStore({ ...storeOptionsFor(s3), endpoint: s3.backend });
  try {
    const sizes = new Map<string, number>();
    for await (const o of store.list('')) sizes.set(o.key, o.size);
    const narinfoKeys = [...sizes.keys()].filter((k) => hashPartOfNarinfoKey(k) !== undefined);
    const pk = opts.publicKey === undefined ? undefined : parsePublicKey(opts.publicKey);
    const violations: string[] = [];
    const storePaths: string[] = [];
    let narsVerified = 0;
    const limit = pLimit(8);
    await Promise.all(
      narinfoKeys.map((key) =>
        limit(async () => {
          const found = await checkOne(store, key, sizes, pk, opts.storeDir);
          violations.push(...found.violations);
          if (found.storePath !== undefined) storePaths.push(found.storePath);
          if (found.narVerified) narsVerified++;
        }),
      ),
    );
    if (narinfoKeys.length > 0) violations.push(...(await cacheInfoViolations(store, opts.storeDir)));
    return {
      violations: violations.sort(),
      narinfos: narinfoKeys.length,
      storePaths: storePaths.sort(),
      narsVerified,
      objects: sizes.size,
    };
  } finally {
    await store.close();
  }
}

/** Nix reads nix-cache-info before anything else and refuses a cache for another store directory. */
async function cacheInfoViolations(store: S3ObjectStore, storeDir = '/nix/store'): Promise<string[]> {
  const text = await store.get('nix-cache-info');
  if (text === undefined) return ['nix-cache-info: missing while the bucket holds narinfos'];
  try {
    const info = parseNixCacheInfo(text.toString('utf8'));
    return info.storeDir === storeDir
      ? []
      : [`nix-cache-info: StoreDir is ${info.storeDir}, not ${storeDir}`];
  } catch (err) {
    return [`nix-cache-info: does not parse: ${(err as Error).message}`];
  }
}

async function checkOne(
  store: S3ObjectStore,
  key: string,
  sizes: Map<string, number>,
  pk: PublicKey | undefined,
  storeDir = '/nix/store',
): Promise<{ violations: string[]; narVerified: boolean; storePath?: string }> {
  const v: string[] = [];
  const text = await store.get(key);
  if (text === undefined) return { violations: [`${key}: listed but cannot be read`], narVerified: false };
  let ni: NarInfo;
  try {
    ni = parseNarInfo(text.toString('utf8'), storeDir);
  } catch (err) {
    return { violations: [`${key}: does not parse: ${(err as Error).message}`], narVerified: false };
  }
  const hashPart = hashPartOfNarinfoKey(key);
  if (!ni.storePath.startsWith(`${storeDir}/${hashPart}-`)) v.push(`${key}: names ${ni.storePath}`);
  for (const ref of ni.references) {
    if (!sizes.has(`${ref.slice(0, 32)}.narinfo`)) v.push(`${key}: reference ${ref} has no narinfo`);
  }
  if (pk) v.push(...signatureViolations(key, ni, pk, storeDir));
  const narVerified = await checkNar(store, key, ni, sizes, v);
  return { violations: v, narVerified, storePath: ni.storePath };
}

function signatureViolations(key: string, ni: NarInfo, pk: PublicKey, storeDir: string): string[] {
  const refs = ni.references.map((r) => `${storeDir}/${r}`);
  const fingerprint = fingerprintPath(ni.storePath, ni.narHash, ni.narSize, refs, storeDir);
  const ours = ni.signatures.filter((s) => s.startsWith(`${pk.name}:`));
  if (ours.length === 0) return [`${key}: no signature by ${pk.name}`];
  return ours
    .filter((s) => !verifySignature(pk, fingerprint, s))
    .map(() => `${key}: a signature by ${pk.name} does not verify`);
}

/** Adds violations for the NAR; true when it was downloaded and all its hashes matched. */
async function checkNar(
  store: S3ObjectStore,
  key: string,
  ni: NarInfo,
  sizes: Map<string, number>,
  v: string[],
): Promise<boolean> {
  const before = v.length;
  const size = sizes.get(ni.url);
  if (size === undefined) {
    v.push(`${key}: its NAR ${ni.url} does not exist`);
    return false;
  }
  if (ni.fileSize !== undefined && size !== ni.fileSize) {
    v.push(`${key}: NAR ${ni.url} has ${size} bytes, FileSize says ${ni.fileSize}`);
  }
  const file = await store.get(ni.url);
  if (file === undefined) {
    v.push(`${key}: NAR ${ni.url} vanished while checking`);
    return false;
  }
  if (ni.fileHash !== undefined && !sameSha256(file, ni.fileHash))
    v.push(`${key}: NAR ${ni.url} does not match FileHash`);
  let nar: Buffer;
  try {
    nar = await decompress(ni.compression, file);
  } catch (err) {
    v.push(`${key}: NAR ${ni.url} does not decompress as ${ni.compression}: ${(err as Error).message}`);
    return false;
  }
  if (nar.length !== ni.narSize) v.push(`${key}: NAR has ${nar.length} bytes, NarSize says ${ni.narSize}`);
  if (!sameSha256(nar, ni.narHash))
    v.push(`${key}: NAR does not match NarHash ${formatHashNix32(ni.narHash)}`);
  return v.length === before;
}

function sameSha256(data: Buffer, h: Hash): boolean {
  return h.algorithm === 'sha256' && createHash('sha256').update(data).digest().equals(h.digest);
}

/** With the zstd/xz command-line tools: an implementation independent of the uploader's. */
async function decompress(compression: string, data: Buffer): Promise<Buffer> {
  if (compression === 'none') return data;
  if (compression !== 'zstd' && compression !== 'xz')
    throw new Error(`unexpected compression ${compression}`);
  const child = spawn(compression, ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  child.stdin.on('error', () => undefined); // the tool may exit early on bad input; its code says so
  child.stdin.end(data);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0)
    throw new Error(`${compression} -d exited ${code}: ${Buffer.concat(err).toString().trim()}`);
  return Buffer.concat(out);
}

/**
 * Keys whose content was committed by a request, with how many times: a PutObject of the whole
 * object or a CompleteMultipartUpload (parts alone commit nothing). Requests known to have failed
 * (a recorded status that is not 2xx, or never forwarded to the server) do not count; recorded
 * requests without a status (a plain recording proxy) count as done.
 */
export function committedWrites(
  requests: ReadonlyArray<RecordedRequest & { status?: number; forwarded?: boolean }>,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of requests) {
    if (r.forwarded === false) continue;
    if (r.status !== undefined && (r.status < 200 || r.status > 299)) continue;
    const whole = r.method === 'PUT' && !r.query.has('partNumber') && !r.query.has('uploadId');
    const completed = r.method === 'POST' && r.query.has('uploadId');
    if (!whole && !completed) continue;
    out.set(r.key, (out.get(r.key) ?? 0) + 1);
  }
  return out;
}

/** The keys `committedWrites` saw more than once, sorted. */
export function keysWrittenTwice(writes: Map<string, number>): string[] {
  return [...writes]
    .filter(([, n]) => n > 1)
    .map(([k]) => k)
    .sort();
}
