// The daemon's roots: every few hours it writes `.loft/roots/<host>.json`, the store paths this
// host runs (loft.publish_roots, resolved by src/store/host-roots.ts), so a prune on any host keeps
// their closures while the object is younger than the retention period. The first write happens
// at start; a failed write is logged and tried again at the next tick, never stopping the daemon.
import { setTimeout as sleep } from 'node:timers/promises';
import { renderRoots, rootsKey } from '../format/loft-state.js';
import type { Logger } from '../log.js';
import type { ObjectStore } from '../storage/object-store.js';

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
