// Present is not enough for a run that signs: a narinfo written unsigned (no key configured) or
// under another key is refused by every Nix that requires our signature, and it would stay that way
// because "already present" paths are never uploaded again. So each present path not known (from
// the presence cache) to carry a valid signature by our key costs one GET of its narinfo; when our
// signature is missing, it is added and the narinfo written back in place. The NAR is never
// touched: the signature covers NarHash, NarSize and References, which we check against what our
// own Nix registered, so we only ever vouch for contents we hold ourselves.
// A narinfo the bucket's signed records vouch for (upload/signed-ledger.ts: listed with the ETag a
// writer with our key recorded, for the fingerprint our Nix gives the path) needs no GET.
import pLimit from 'p-limit';
import type { PresenceCache } from '../state/presence.js';
import { fingerprintOfParsed } from '../format/fingerprint.js';
import { hashEquals } from '../format/hash.js';
import { parseNarInfo, renderNarInfo, type NarInfo } from '../format/narinfo.js';
import type { PathInfo } from '../format/path-info.js';
import {
  formatPublicKey,
  publicKeyOf,
  signFingerprint,
  signatureKeyName,
  verifySignature,
  type PublicKey,
  type SecretKey,
} from '../format/signing-key.js';
import { baseNameOfParsed } from '../format/store-path.js';
import type { Logger } from '../log.js';
import type { ObjectStore } from '../storage/object-store.js';
import { CONTENT_TYPE_NARINFO, narinfoKey } from '../format/bucket-layout.js';
import { fingerprintDigest } from '../format/signed-record.js';
import type { SignedLedger } from './signed-ledger.js';

export interface ReSignDeps {
  store: ObjectStore;
  cache: PresenceCache;
  storeDir: string;
  signingKey: SecretKey;
  logger: Logger;
  signal?: AbortSignal;
  /** The bucket's signed records, already loaded; absent: every unknown narinfo is read. */
  ledger?: SignedLedger;
  /** ETags of present narinfos as this run's presence check saw them. */
  etags?: ReadonlyMap<string, string>;
}

export interface ReSignResult {
  /** Paths whose narinfo got our signature added in place. */
  resigned: string[];
  /** Paths that must be uploaded after all: narinfo gone, unreadable, or for other contents. */
  reupload: Set<string>;
  requests: number;
  /** Present narinfos the signed records vouched for, not read. */
  vouched?: number;
}

/**
 * GETs of narinfos in flight at once. A re-push from a runner with empty local state reads every
 * narinfo of the closure (hundreds) and each costs a round trip: 16 at once made 400 narinfos take
 * 25 round trips (1 s at 40 ms); 48 stays under the HTTP agent's 50 sockets.
 */
const GET_CONCURRENCY = 48;

/** The identity recorded in the presence cache for narinfos signed by `key`. */
export function signerId(key: SecretKey): string {
  return formatPublicKey(publicKeyOf(key));
}

export async function ensureSignedByUs(present: PathInfo[], deps: ReSignDeps): Promise<ReSignResult> {
  const signer = signerId(deps.signingKey);
  // One key object for every check: verifySignature prepares its Ed25519 key once per object.
  const pk = publicKeyOf(deps.signingKey);
  const byHash = new Map(present.map((i) => [i.hashPart, i]));
  const unknown = deps.cache.notSignedBy([...byHash.keys()], signer);
  const result: ReSignResult = { resigned: [], reupload: new Set(), requests: 0 };
  const signed: string[] = [];
  const limit = pLimit(GET_CONCURRENCY);
  try {
    await Promise.all(
      unknown.map((hashPart) =>
        limit(async () => {
          const info = byHash.get(hashPart)!;
          const fingerprint = fingerprintOfParsed(info.path, info.narHash, info.narSize, info.references);
          if (deps.ledger?.vouches(hashPart, deps.etags?.get(hashPart), fingerprintDigest(fingerprint))) {
            result.vouched = (result.vouched ?? 0) + 1;
            signed.push(hashPart);
            return;
          }
          const outcome = await checkOne(info, hashPart, fingerprint, pk, deps, result);
          if (outcome === 'reupload') result.reupload.add(info.path);
          else signed.push(hashPart);
          if (outcome === 'resigned') result.resigned.push(info.path);
        }),
      ),
    );
  } finally {
    // In one transaction, also when a check failed: what was seen signed stays known.
    deps.cache.setSignerMany(signed, signer);
  }
  return result;
}

async function checkOne(
  info: PathInfo,
  hashPart: string,
  fingerprint: string,
  pk: PublicKey,
  deps: ReSignDeps,
  result: ReSignResult,
): Promise<'signed' | 'resigned' | 'reupload'> {
  result.requests++;
  const got = await readTagged(narinfoKey(hashPart), deps);
  const narinfo = got === undefined ? undefined : parseOrUndefined(got.body, deps);
  if (narinfo === undefined || !describesSameContents(narinfo, info)) {
    deps.logger.info(
      { path: info.path },
      'narinfo in the cache is missing, unreadable or differs; uploading',
    );
    return 'reupload';
  }
  const digest = fingerprintDigest(fingerprint);
  if (narinfo.signatures.some((sig) => verifySignature(pk, fingerprint, sig))) {
    if (got?.etag !== undefined) deps.ledger?.note(hashPart, got.etag, digest);
    return 'signed';
  }
  // Ours first, as on upload; an old signature under our key's name (a replaced key) would only
  // confuse readers, so it goes.
  const others = narinfo.signatures.filter((sig) => keyNameOf(sig) !== deps.signingKey.name);
  narinfo.signatures = [signFingerprint(deps.signingKey, fingerprint), ...others];
  result.requests++;
  await deps.store.putBytes(narinfoKey(hashPart), renderNarInfo(narinfo), {
    contentType: CONTENT_TYPE_NARINFO,
    onEtag: (etag) => deps.ledger?.note(hashPart, etag, digest),
    ...(deps.signal ? { signal: deps.signal } : {}),
  });
  deps.logger.info({ path: info.path, key: deps.signingKey.name }, 'present narinfo re-signed with our key');
  return 'resigned';
}

async function readTagged(key: string, deps: ReSignDeps) {
  if (deps.store.getTagged) return deps.store.getTagged(key, deps.signal);
  const body = await deps.store.get(key, deps.signal);
  return body === undefined ? undefined : { body, etag: undefined };
}

function parseOrUndefined(body: Buffer, deps: ReSignDeps): NarInfo | undefined {
  try {
    return parseNarInfo(body.toString('utf8'), deps.storeDir);
  } catch {
    return undefined;
  }
}

/** The narinfo speaks of the same path with the NarHash, NarSize and References our Nix has. */
function describesSameContents(n: NarInfo, info: PathInfo): boolean {
  const refs = (list: string[]) => [...new Set(list)].sort().join(' ');
  return (
    n.storePath === info.path &&
    hashEquals(n.narHash, info.narHash) &&
    n.narSize === info.narSize &&
    refs(n.references) === refs(info.references.map(baseNameOfParsed))
  );
}

function keyNameOf(sig: string): string | undefined {
  try {
    return signatureKeyName(sig);
  } catch {
    return undefined;
  }
}
