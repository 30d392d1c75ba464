// Reading loft's state objects (`.loft/prune/*`, src/format/loft-state.ts) and the roots hosts
// published (`.loft/roots/*`) from a cache: one
// listing of the prefix, and a GET only of objects not seen before in their current form (the
// caller keeps `known` between reads), so an uploader's check before each batch usually costs one
// small listing and nothing more.
import {
  CLOCK_KEY,
  LOFT_PREFIX,
  parseRoots,
  parseState,
  ROOTS_PREFIX,
  stateKindOfKey,
  type StateObject,
} from '../format/loft-state.js';
import type { Logger } from '../log.js';
import type { ObjectStore } from './object-store.js';

export interface LoftState {
  states: StateObject[];
  /** LastModified of `.loft/clock`: it changes whenever a prune (mark/sweep) runs. */
  clockAt?: number;
}

/** Every state object under `.loft/prune/`, with its LastModified; unreadable ones are skipped. */
export async function readStates(
  deps: { store: ObjectStore; logger: Logger; signal?: AbortSignal | undefined },
  known?: Map<string, StateObject>,
): Promise<LoftState> {
  const out: StateObject[] = [];
  const listed = new Set<string>();
  let clockAt: number | undefined;
  for await (const o of deps.store.list(LOFT_PREFIX, deps.signal)) {
    if (o.key === CLOCK_KEY) clockAt = o.lastModified.getTime();
    const kind = stateKindOfKey(o.key);
    if (kind === undefined) continue;
    const at = o.lastModified.getTime();
    listed.add(o.key);
    const seen = known?.get(o.key);
    if (seen && seen.at === at) {
      out.push(seen);
      continue;
    }
    const body = await deps.store.get(o.key, deps.signal);
    if (body === undefined) continue; // removed since the listing
    try {
      const state = { key: o.key, at, body: parseState(kind, body.toString('utf8')) };
      known?.set(o.key, state);
      out.push(state);
    } catch (err) {
      // Only loft writes here; an object it cannot read is left alone and acted on by nobody.
      deps.logger.warn({ key: o.key, err }, 'unreadable loft state object: ignored');
    }
  }
  if (known) for (const k of known.keys()) if (!listed.has(k)) known.delete(k);
  return { states: out, ...(clockAt !== undefined ? { clockAt } : {}) };
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
