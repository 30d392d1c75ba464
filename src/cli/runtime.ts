// Opening what a command works with, from a loaded Config: the object store and the presence
// cache. Each piece is released in `close`, whatever happened.
import { MultipartState } from '../state/multipart-state.js';
import { PresenceCache } from '../state/presence.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { storageTarget } from '../config/storage-target.js';
import { openObjectStore } from '../storage/open-store.js';
import type { ObjectStore } from '../storage/object-store.js';
import { releaseAll, type Release } from '../release-list.js';

export interface Runtime {
  config: Config;
  logger: Logger;
  store: ObjectStore;
  cache: PresenceCache;
  /** S3 only: unfinished multipart uploads, so a killed run's large NAR is resumed. */
  multipart?: MultipartState;
  close(): Promise<void>;
}

export async function openRuntime(config: Config, logger: Logger): Promise<Runtime> {
  const store = openObjectStore(config.storage, logger.child({ component: 'storage' }));
  const releases: Release[] = [() => store.close()];
  try {
    const cache = PresenceCache.open(config.localCachePath, {
      target: storageTarget(config.storage),
      logger: logger.child({ component: 'presence-cache' }),
    });
    releases.push(() => cache.close());
    const multipart =
      config.storage.kind === 's3'
        ? MultipartState.open(config.localCachePath, { target: storageTarget(config.storage) })
        : undefined;
    if (multipart) releases.push(() => multipart.close());
    return {
      config,
      logger,
      store,
      cache,
      ...(multipart ? { multipart } : {}),
      close: () => releaseAll(releases),
    };
  } catch (err) {
    await releaseAll(releases);
    throw err;
  }
}
