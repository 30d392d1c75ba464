// Reading loft's state objects (`.loft/prune/*`, src/format/loft-state.ts), the bucket's grace
// record (`.loft/grace.json`) and the roots hosts published (`.loft/roots/*`) from a cache: one
// listing of the prefix, and a GET only of objects not seen before in their current form (the
// caller keeps `known` between reads), so an uploader's check before each batch usually costs one
// small listing and nothing more.
import {
  BUCKET_GRACE_KEY,
  CLOCK_KEY,
  LOFT_PREFIX,
  parseBucketGrace,
  parseRoots,
  parseState,
  renderBucketGrace,
  ROOTS_PREFIX,
  stateKindOfKey,
  type BucketGrace,
  type StateObject,
} from '../format/loft-state.js';
import type { Logger } from '../log.js';
import type { ObjectStore } from './object-store.js';

export interface LoftState {
  states: StateObject[];
  /** LastModified of `.loft/clock`: it changes whenever a prune (mark/sweep) runs. */
  clockAt?: number;
  /** `.loft/grace.json`: absent on a bucket no prune of this version has touched. */
  grace?: GraceRecord;
}

/** The grace record as listed; `record` is undefined when its body cannot be read. */
export interface GraceRecord {
  at: number;
  record?: BucketGrace;
}

/** What a reader saw before, so an unchanged object is not fetched again. */
export interface KnownState {
  states: Map<string, StateObject>;
  grace?: GraceRecord;
}

type Deps = { store: ObjectStore; logger: Logger; signal?: AbortSignal | undefined };

/** Every state object under `.loft/prune/`, with its LastModified; unreadable ones are skipped. */
export async function readStates(deps: Deps, known?: KnownState): Promise<LoftState> {
  const out: StateObject[] = [];
  const listed = new Set<string>();
  let clockAt: number | undefined;
  let grace: GraceRecord | undefined;
  for await (const o of deps.store.list(LOFT_PREFIX, deps.signal)) {
    if (o.key === CLOCK_KEY) clockAt = o.lastModified.getTime();
    if (o.key === BUCKET_GRACE_KEY) grace = await readGrace(deps, o.lastModified.getTime(), known);
    const kind = stateKindOfKey(o.key);
    if (kind === undefined) continue;
    const at = o.lastModified.getTime();
    listed.add(o.key);
    const seen = known?.states.get(o.key);
    if (seen && seen.at === at) {
      out.push(seen);
      continue;
    }
    const body = await deps.store.get(o.key, deps.signal);
    if (body === undefined) continue; // removed since the listing
    try {
      const state = { key: o.key, at, body: parseState(kind, body.toString('utf8')) };
      known?.states.set(o.key, state);
      out.push(state);
    } catch (err) {
      // Only loft writes here; an object it cannot read is left alone and acted on by nobody.
      deps.logger.warn({ key: o.key, err }, 'unreadable loft state object: ignored');
    }
  }
  if (known) for (const k of known.states.keys()) if (!listed.has(k)) known.states.delete(k);
  if (known) {
    if (grace) known.grace = grace;
    else delete known.grace;
  }
  return { states: out, ...(clockAt !== undefined ? { clockAt } : {}), ...(grace ? { grace } : {}) };
}

async function readGrace(deps: Deps, at: number, known?: KnownState): Promise<GraceRecord | undefined> {
  if (known?.grace?.at === at) return known.grace;
  const body = await deps.store.get(BUCKET_GRACE_KEY, deps.signal);
  if (body === undefined) return undefined; // removed since the listing
  try {
    return { at, record: parseBucketGrace(body.toString('utf8')) };
  } catch (err) {
    deps.logger.warn({ key: BUCKET_GRACE_KEY, err }, 'unreadable bucket grace record');
    return { at };
  }
}

/** Writes the bucket's grace record (a prune's first, or `loft --set-bucket-grace`'s change). */
export async function writeBucketGrace(deps: Deps, record: BucketGrace): Promise<void> {
  await deps.store.putBytes(BUCKET_GRACE_KEY, renderBucketGrace(record), {
    contentType: 'application/json',
    ...(deps.signal ? { signal: deps.signal } : {}),
  });
}

/**
 * Hash parts of the roots hosts published (`.loft/roots/*.json`) at or after `since` (server
 * time, ms); older ones are from hosts that stopped publishing and protect nothing.
 */
export async function readPublishedRoots(
  deps: { store: ObjectStore; logger: Logger; signal?: AbortSignal | undefined },
  since: number,
): Promise<Set<string>> {
  const out = new Set<string>();
  for await (const o of deps.store.list(ROOTS_PREFIX, deps.signal)) {
    if (o.lastModified.getTime() < since || !o.key.endsWith('.json')) continue;
    const body = await deps.store.get(o.key, deps.signal);
    if (body === undefined) continue;
    try {
      for (const h of parseRoots(body.toString('utf8')).paths) out.add(h);
    } catch (err) {
      deps.logger.warn({ key: o.key, err }, 'unreadable roots object: ignored');
    }
  }
  return out;
}
