// Objects loft keeps in a cache beside what Nix reads. A Nix client only ever asks a binary cache
// for `nix-cache-info`, `<hash>.narinfo`, the URL a narinfo names, `<hash>.ls`, `log/<drv>`,
// `realisations/...` and `build-trace-v2/...`, so nothing under `.loft/` is visible to Nix.
//   .loft/clock                   a few bytes; its LastModified right after a PUT is the server's now
//   .loft/prune/mark-<id>.json    paths a prune condemned; the mark's time is the object's LastModified
//   .loft/prune/doom-<id>.json    condemned paths still unused a grace period later: their narinfos
//                                 go once the object is `settle` old, unless revived or referenced
//   .loft/prune/gone-<id>.json    keys (NARs, listings, logs) left by deleted narinfos and orphan
//                                 NARs: deleted a grace period later unless a narinfo names them then
//   .loft/roots/<host>.json       the store paths a host runs (its daemon rewrites it periodically):
//                                 a prune keeps their closures while the object is recent
//   .loft/grace.json              the bucket's grace period, which every host follows whatever its
//                                 own prune_grace_hours: written by the first prune, changed only by
//                                 `loft --set-bucket-grace` (a change waits in `pending` until the
//                                 grace in force when it was asked for has passed):
//     {"v":1,"kind":"grace","protocol":1,"grace":<ms>,"settle":<ms>,
//      "pending":{"grace":<ms>,"settle":<ms>,"from":<server ms>}}   (pending only while a change waits)
// Bodies are JSON, one object per prune step and never rewritten (two prunes cannot lose each
// other's updates): {"v":1,"kind":"mark","host":H,"paths":["<hash32>",...]},
// {"v":1,"kind":"doom","host":H,"paths":[{"h":"<hash32>","marked":<ms>}]},
// {"v":1,"kind":"gone","host":H,"paths":["<hash32>"],"keys":["nar/..."]}.
// Each body may also carry "grace": the writer's grace in ms, so that uploaders whose own setting is
// longer still re-check as often as the shortest grace in use requires (all a bucket without
// `.loft/grace.json` has: the bodies go once their work is done, and the announcement with them).
// Times are always the server's (LastModified), never a host's clock.
import { FormatError } from '../errors.js';

export const LOFT_PREFIX = '.loft/';
export const CLOCK_KEY = `${LOFT_PREFIX}clock`;
export const PRUNE_STATE_PREFIX = `${LOFT_PREFIX}prune/`;

export type StateKind = 'mark' | 'doom' | 'gone';

/** `settle` is never longer than this, so a prune can wait for its doom's window in the same run. */
export const MAX_SETTLE_MS = 10 * 60_000;

/**
 * settle, from the grace period: the doom-to-sweep delay, the length of a sweep's window, and
 * twice the longest an uploader may publish on one listing of the state objects.
 */
export function settleMsOf(graceMs: number): number {
  return Math.min(graceMs / 4, MAX_SETTLE_MS);
}

export interface MarkBody {
  grace?: number;
  kind: 'mark';
  host: string;
  paths: string[];
}
export interface DoomEntry {
  h: string;
  /** When the path was marked (the mark object's LastModified, ms). */
  marked: number;
}
export interface DoomBody {
  grace?: number;
  kind: 'doom';
  host: string;
  paths: DoomEntry[];
}
export interface GoneBody {
  grace?: number;
  kind: 'gone';
  host: string;
  paths: string[];
  keys: string[];
}
export type StateBody = MarkBody | DoomBody | GoneBody;

/** A state object as listed: its key, LastModified (ms) and what it says. */
export interface StateObject<B extends StateBody = StateBody> {
  key: string;
  at: number;
  body: B;
}

const HASH = /^[0-9a-df-np-sv-z]{32}$/;
const STATE_KEY = /^\.loft\/prune\/(mark|doom|gone)-[0-9a-z-]{1,80}\.json$/;

/** The kind a key under `.loft/prune/` names, or undefined for anything else. */
export function stateKindOfKey(key: string): StateKind | undefined {
  return STATE_KEY.exec(key)?.[1] as StateKind | undefined;
}

/** `id` must be unique per writer and step (a time and a random part, say). */
export function stateKey(kind: StateKind, id: string): string {
  const key = `${PRUNE_STATE_PREFIX}${kind}-${id}.json`;
  if (!STATE_KEY.test(key)) throw new FormatError(`bad loft state object id ${JSON.stringify(id)}`);
  return key;
}

export function renderState(body: StateBody): string {
  return `${JSON.stringify({ v: 1, ...body })}\n`;
}

/** Throws FormatError when `text` is not a state object of `kind` this version understands. */
export function parseState(kind: StateKind, text: string): StateBody {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new FormatError(`loft ${kind} object is not JSON`);
  }
  const o = raw as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || o.v !== 1 || o.kind !== kind || typeof o.host !== 'string') {
    throw new FormatError(`loft ${kind} object has no version 1 header of its kind`);
  }
  const host = o.host;
  const g = o.grace;
  if (g !== undefined && !(typeof g === 'number' && g > 0))
    throw new FormatError(`loft ${kind} object has a bad grace`);
  const grace = g === undefined ? {} : { grace: g };
  if (kind === 'doom') {
    const paths = array(o.paths, kind).map((e) => {
      const d = e as Partial<DoomEntry>;
      if (typeof d.h !== 'string' || !HASH.test(d.h) || typeof d.marked !== 'number') {
        throw new FormatError('loft doom object has an entry without a hash and a mark time');
      }
      return { h: d.h, marked: d.marked };
    });
    return { kind, host, ...grace, paths };
  }
  const paths = hashes(o.paths, kind);
  if (kind === 'mark') return { kind, host, ...grace, paths };
  const keys = array(o.keys, kind).map((k) => {
    if (typeof k !== 'string' || k === '' || k.startsWith(LOFT_PREFIX)) {
      throw new FormatError('loft gone object names a key that is not an object of the cache');
    }
    return k;
  });
  return { kind, host, ...grace, paths, keys };
}

function array(v: unknown, kind: string): unknown[] {
  if (!Array.isArray(v)) throw new FormatError(`loft ${kind} object has no list where one belongs`);
  return v as unknown[];
}

function hashes(v: unknown, kind: string): string[] {
  return array(v, kind).map((h) => {
    if (typeof h !== 'string' || !HASH.test(h)) throw new FormatError(`loft ${kind} object names a bad hash`);
    return h;
  });
}

/** What an uploader must know from the state objects it listed. */
export interface PruneView {
  /** Marked: an upload treats these as absent and uploads them again (which revives them). */
  condemned: Set<string>;
  /** Doomed: their narinfos may go at any moment; nothing may be published that relies on them. */
  doomed: Set<string>;
  /** Deleted by a prune: absent, whatever a local presence cache says. */
  gone: Set<string>;
  /** Keys due for deletion (uploads write every NAR under a key of its own, so never these). */
  pendingKeys: Set<string>;
  /** The shortest grace (ms) a pruner of this bucket announced, if any did. */
  minGraceMs?: number;
  /** The bucket's own grace record, when it has one. */
  bucket?: BucketGrace;
}

export function pruneView(objects: readonly StateObject[], bucket?: BucketGrace): PruneView {
  const view: PruneView = {
    condemned: new Set(),
    doomed: new Set(),
    gone: new Set(),
    pendingKeys: new Set(),
    ...(bucket ? { bucket } : {}),
  };
  for (const { body } of objects) {
    if (body.grace !== undefined) view.minGraceMs = Math.min(view.minGraceMs ?? Infinity, body.grace);
    if (body.kind === 'mark') for (const h of body.paths) view.condemned.add(h);
    else if (body.kind === 'doom') for (const e of body.paths) view.doomed.add(e.h);
    else {
      for (const h of body.paths) view.gone.add(h);
      for (const k of body.keys) view.pendingKeys.add(k);
    }
  }
  return view;
}

export const ROOTS_PREFIX = `${LOFT_PREFIX}roots/`;

/** {"v":1,"kind":"roots","host":H,"paths":["<hash32>",...]}: what host H runs. */
export interface RootsBody {
  kind: 'roots';
  host: string;
  paths: string[];
}

/** A host name as a key part: lower case, anything but letters, digits, `.` and `-` becomes `-`. */
export function rootsKey(host: string): string {
  const safe = host
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, '-')
    .replace(/^\.+/, '-')
    .slice(0, 100);
  return `${ROOTS_PREFIX}${safe || 'host'}.json`;
}

export function renderRoots(body: RootsBody): string {
  return `${JSON.stringify({ v: 1, ...body })}\n`;
}

export function parseRoots(text: string): RootsBody {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new FormatError('loft roots object is not JSON');
  }
  if (o?.v !== 1 || o.kind !== 'roots' || typeof o.host !== 'string') {
    throw new FormatError('loft roots object has no version 1 header of its kind');
  }
  return { kind: 'roots', host: o.host, paths: hashes(o.paths, 'roots') };
}

export const BUCKET_GRACE_KEY = `${LOFT_PREFIX}grace.json`;
/** The rules of mark, wait, sweep this loft follows (src/prune/sweep-plan.ts). */
export const PRUNE_PROTOCOL = 1;

export interface GraceSetting {
  grace: number;
  settle: number;
}
export interface BucketGrace extends GraceSetting {
  protocol: number;
  /** A change asked for, effective from `from` (the server's ms). */
  pending?: GraceSetting & { from: number };
}

export function graceSetting(graceMs: number): GraceSetting {
  return { grace: graceMs, settle: settleMsOf(graceMs) };
}

export function newBucketGrace(graceMs: number): BucketGrace {
  return { protocol: PRUNE_PROTOCOL, ...graceSetting(graceMs) };
}

export function renderBucketGrace(b: BucketGrace): string {
  return `${JSON.stringify({ v: 1, kind: 'grace', ...b })}\n`;
}

export function parseBucketGrace(text: string): BucketGrace {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new FormatError('loft grace object is not JSON');
  }
  if (o?.v !== 1 || o.kind !== 'grace' || !isCount(o.protocol) || o.protocol < 1) {
    throw new FormatError('loft grace object has no version 1 header of its kind');
  }
  const current = setting(o);
  if (o.pending === undefined) return { protocol: o.protocol, ...current };
  const p = o.pending as Record<string, unknown>;
  if (typeof p !== 'object' || p === null || !isCount(p.from)) {
    throw new FormatError('loft grace object has a bad pending change');
  }
  return { protocol: o.protocol, ...current, pending: { ...setting(p), from: p.from } };
}

function setting(o: Record<string, unknown>): GraceSetting {
  const { grace, settle } = o;
  if (!isCount(grace) || grace <= 0 || !isCount(settle) || settle > grace) {
    throw new FormatError('loft grace object has a bad grace or settle');
  }
  return { grace, settle };
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** The record at server time `now`: a pending change whose time has come is the grace in force. */
export function settledGrace(b: BucketGrace, now: number): BucketGrace {
  if (!b.pending || now < b.pending.from) return b;
  const { grace, settle } = b.pending;
  return { protocol: b.protocol, grace, settle };
}

/**
 * What a prune follows at server time `now`: while a change waits, the longer of both, so that no
 * path goes sooner than an uploader trusting either may rely on it.
 */
export function pruneGraceOf(b: BucketGrace, now: number): GraceSetting {
  const s = settledGrace(b, now);
  const longer = s.pending && s.pending.grace > s.grace ? s.pending : s;
  return { grace: longer.grace, settle: longer.settle };
}

/**
 * What an uploader follows: while a change is recorded, the shorter of both. An uploader does not
 * know the server's time, so a due change counts as pending until a prune makes it current.
 */
export function uploadGraceOf(b: BucketGrace): GraceSetting {
  const shorter = b.pending && b.pending.grace < b.grace ? b.pending : b;
  return { grace: shorter.grace, settle: shorter.settle };
}

/**
 * `loft --set-bucket-grace`, asked at server time `now`: the change waits until the grace in force
 * now has passed (a shorter grace at once would expose uploads that relied on the longer one; a
 * longer one at once would let uploaders rely on it while prunes still follow the shorter). Asking
 * for the grace in force cancels a waiting change.
 */
export function withGraceChange(b: BucketGrace, graceMs: number, now: number): BucketGrace {
  const s = settledGrace(b, now);
  const current = { protocol: s.protocol, grace: s.grace, settle: s.settle };
  if (graceMs === s.grace) return current;
  return { ...current, pending: { ...graceSetting(graceMs), from: now + s.grace } };
}

/**
 * The grace and settle an uploader follows: its own, but never longer than the bucket's record
 * (or, on a bucket without one, a pruner's announcement) allows.
 */
export function uploaderGrace(ownMs: number, view: PruneView): GraceSetting {
  const bucket = view.bucket ? uploadGraceOf(view.bucket) : undefined;
  const grace = Math.min(ownMs, view.minGraceMs ?? Infinity, bucket?.grace ?? Infinity);
  return { grace, settle: Math.min(settleMsOf(grace), bucket?.settle ?? Infinity) };
}
