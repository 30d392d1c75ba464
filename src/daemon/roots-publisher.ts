// The daemon's roots: every few hours it writes `.loft/roots/<host>.json`, the store paths this
// host runs (loft.publish_roots, resolved by src/store/host-roots.ts), so a prune on any host keeps
// their closures while the object is younger than the retention period. The first write happens
// at start; a failed write is logged and tried again at the next tick, never stopping the daemon.
import { setTimeout as sleep } from 'node:timers/promises';
import { renderRoots, rootsKey } from '../format/loft-state.js';
import type { Logger } from '../log.js';
import type { ObjectStore } from '../storage/object-store.js';
import { resolveHostRoots } from '../store/host-roots.js';

export interface RootsPublisherDeps {
  store: ObjectStore;
  host: string;
  /** Hash parts of what this host runs now. */
  resolve: () => Promise<string[]>;
  logger: Logger;
  everyMs: number;
}

export async function publishRootsOnce(deps: Omit<RootsPublisherDeps, 'everyMs'>): Promise<number> {
  const paths = await deps.resolve();
  await deps.store.putBytes(rootsKey(deps.host), renderRoots({ kind: 'roots', host: deps.host, paths }), {
    contentType: 'application/json',
  });
  return paths.length;
}

export function startRootsPublisher(deps: RootsPublisherDeps): { stop(): Promise<void> } {
  const stopped = new AbortController();
  const loop = (async () => {
    while (!stopped.signal.aborted) {
      try {
        const n = await publishRootsOnce(deps);
        deps.logger.info({ roots: n, key: rootsKey(deps.host) }, 'published the roots this host runs');
      } catch (err) {
        deps.logger.warn({ err }, 'could not publish the roots this host runs; trying again later');
      }
      try {
        await sleep(deps.everyMs, undefined, { signal: stopped.signal });
      } catch {
        break; // stopped
      }
    }
  })();
  return {
    async stop() {
      stopped.abort();
      await loop;
    },
  };
}

/** Often enough that a daemon that runs keeps its roots far younger than any retention (>= 1 day). */
export const ROOTS_EVERY_MS = 6 * 3_600_000;

/**
 * loft.publish_roots as the daemon runs it: nothing when no entry is configured (the host publishes
 * no roots file at all), else a publisher of what the entries resolve to now (store/host-roots.ts).
 * Returns the function that stops it.
 */
export function publishConfiguredRoots(opts: {
  entries: readonly string[];
  storeDir: string;
  store: ObjectStore;
  host: string;
  logger: Logger;
}): () => Promise<void> {
  if (opts.entries.length === 0) return () => Promise.resolve();
  const publisher = startRootsPublisher({
    store: opts.store,
    host: opts.host,
    resolve: () => resolveHostRoots(opts.entries, opts.storeDir),
    logger: opts.logger,
    everyMs: ROOTS_EVERY_MS,
  });
  return () => publisher.stop();
}
