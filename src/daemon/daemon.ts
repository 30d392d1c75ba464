// The store-watching daemon, wired from its parts: the watcher turns store events into queue rows,
// the worker turns queue rows into uploads, the initial scan queues the whole store once, and a
// status line says how it goes. Everything it needs from outside (the presence cache, the uploader,
// Nix's list of valid paths) is handed in, so the CLI owns process concerns and tests can drive it.
import type { PresenceCache } from '../state/presence.js';
import type { Logger } from '../log.js';
import { releaseAll, type Release } from '../release-list.js';
import { StoreWatcher } from '../store/store-watcher.js';
import { startPruneLoop, type ScheduledPrune } from './prune-loop.js';
import type { UploadQueue } from '../state/queue.js';
import { UploadWorker, type UploadBatch } from './worker.js';
import type { AccessState } from './access-state.js';
import { isDatabaseCorrupt } from '../state/heal.js';

export interface DaemonDeps {
  queue: UploadQueue;
  cache: PresenceCache;
  upload: UploadBatch;
  /** Every valid path of the local store (`nix path-info --all`), for the initial scan. */
  listValidPaths: () => Promise<string[]>;
  /** Fills the presence cache from the bucket (populate_cache_on_startup). */
  populateCache?: () => Promise<void>;
  /** Pruning on loft.prune_schedule, when enabled. */
  prune?: ScheduledPrune;
  /** Whether the object store accepts loft (shared with /metrics); the worker keeps it. */
  access?: AccessState;
  /** One cheap request the worker sends while access is lost (access-state.ts's probeAccess). */
  probeAccess?: (signal: AbortSignal) => Promise<void>;
  /**
   * SQLite reported the local database damaged while the daemon ran: the caller stops this run,
   * closes the file, lets it heal (src/state/heal.ts) and starts again. Without it, the error
   * backs the worker off like any other.
   */
  onDatabaseDamaged?: (err: unknown) => void;
  /**
   * A logger without a `component` binding: the daemon's own lines get component "daemon" and its
   * parts their own name (a child of a child would repeat the key in every JSON line).
   */
  logger: Logger;
}

export interface DaemonOptions {
  storeDir: string;
  uploadDerivations: boolean;
  scanOnStartup: boolean;
  populateCacheOnStartup: boolean;
  /** The name of the key narinfos are signed with; undefined: unsigned (said when the daemon starts). */
  signingKeyName?: string;
  /** How long in-flight uploads may run on after a stop request before they are aborted. */
  graceMs?: number;
  /** Longest sleep between the worker's looks at the queue (tests shorten it). */
  pollMs?: number;
  batchSize?: number;
  /** The catch-up's slack (default CATCH_UP_SLACK_MS); shorter after a fresh start (cli/fresh-start.ts). */
  catchUpSlackMs?: number;
}

/** How often the daemon logs its status line (and records that it is alive, for the catch-up). */
const STATUS_EVERY_MS = 60_000;
/** Paths are written to the queue in transactions of this many. */
const ENQUEUE_CHUNK = 5000;
/** A path landing this close before the previous run's last sign of life is looked at again. */
const CATCH_UP_SLACK_MS = 5 * 60_000;

/** Runs until `stop` is aborted, then shuts down in order. The queue keeps unfinished work. */
export async function runDaemon(rootDeps: DaemonDeps, opts: DaemonOptions, stop: AbortSignal): Promise<void> {
  const root = rootDeps.logger;
  const deps = { ...rootDeps, logger: root.child({ component: 'daemon' }) };
  const { queue, logger } = deps;
  const releases: Release[] = [];
  let worker: UploadWorker | undefined;
  try {
    const requeued = queue.requeueParked();
    if (requeued > 0) logger.info({ paths: requeued }, 'parked paths queued again');
    worker = new UploadWorker({
      queue,
      upload: deps.upload,
      logger: root.child({ component: 'worker' }),
      ...pick(opts, ['pollMs', 'batchSize']),
      ...pick(deps, ['access', 'probeAccess', 'onDatabaseDamaged']),
    });
    const notify = worker.notify.bind(worker);
    const watcher = startWatcher(deps, opts, notify, root.child({ component: 'watcher' }));
    releases.push(() => watcher.stop());
    // Watching starts first, so nothing built while the cache is being populated is missed.
    await watcher.start();
    if (opts.populateCacheOnStartup && deps.populateCache) await deps.populateCache();
    if (stop.aborted) return;
    worker.start();
    const started = worker;
    releases.push(() => started.stop(opts.graceMs ?? 30_000));
    const { pending, parked } = queue.counts();
    const signedBy = opts.signingKeyName ?? null;
    logger.info(
      { storeDir: opts.storeDir, queued: pending, parked, signedBy },
      'daemon started, watching the store',
    );

    if (deps.prune) {
      const loop = startPruneLoop(deps.prune, started, root.child({ component: 'prune' }));
      releases.push(() => loop.stop());
    }

    const status = setInterval(() => {
      try {
        logStatus(deps, started.stats.uploaded);
      } catch (err) {
        damagedOrLogged(deps, err);
      }
    }, STATUS_EVERY_MS);
    status.unref();
    releases.push(() => clearInterval(status));

    // A fresh file standing in for a damaged one (src/state/heal.ts) lost the queue: the store is
    // scanned whatever scan_on_startup says, and each upload asks the bucket what it has.
    const rebuild = deps.cache.getNote(REBUILD_NOTE);
    if ((opts.scanOnStartup || rebuild) && !deps.cache.getFlag('initial_scan_complete')) {
      if (rebuild) logger.info({ reason: rebuild }, 'local database was rebuilt: queueing the store again');
      await initialScan(deps, stop);
      notify();
    }
    if (rebuild && !stop.aborted) deps.cache.setNote(REBUILD_NOTE, '');
    await abortedPromise(stop);
    logger.info('stopping: no new uploads; waiting for uploads in progress');
  } finally {
    await releaseAll(releases, (err) => logger.error({ err }, 'error while stopping the daemon'));
  }
  const { pending, parked } = queue.counts();
  queue.setState('last_watch_at', String(Date.now()));
  logger.info({ queued: pending, parked, uploadedSinceStart: worker?.stats.uploaded ?? 0 }, 'daemon stopped');
}

function startWatcher(
  deps: DaemonDeps,
  opts: DaemonOptions,
  notify: () => void,
  logger: Logger,
): StoreWatcher {
  const last = Number(deps.queue.getState('last_watch_at'));
  return new StoreWatcher({
    storeDir: opts.storeDir,
    uploadDerivations: opts.uploadDerivations,
    onPaths: (paths) => {
      let added: number;
      try {
        added = deps.queue.enqueue(paths);
      } catch (err) {
        // Not lost: the rebuilt database is filled by a scan of the store.
        if (deps.onDatabaseDamaged && isDatabaseCorrupt(err)) return deps.onDatabaseDamaged(err);
        throw err;
      }
      deps.logger.debug({ paths: paths.length, added }, 'store paths queued');
      notify();
    },
    logger,
    ...(Number.isFinite(last) && last > 0
      ? { since: last - (opts.catchUpSlackMs ?? CATCH_UP_SLACK_MS) }
      : {}),
  });
}

/**
 * Queues every valid path once, on the first start, in the queue's backlog lane: what the watcher
 * and the hook queue (new builds) is uploaded first, and the store drains behind it. A large store
 * would otherwise hold a build made now for as long as uploading the whole store takes.
 * initial_scan_complete is separate from populated_from_bucket (warming the presence cache must
 * not skip the scan). The flag is set once the paths are in the persistent queue, so a crash after
 * that loses nothing.
 */
async function initialScan(deps: DaemonDeps, stop: AbortSignal): Promise<void> {
  deps.logger.info('initial scan: queueing every valid store path');
  const paths = await deps.listValidPaths();
  if (stop.aborted) return;
  let added = 0;
  for (let i = 0; i < paths.length; i += ENQUEUE_CHUNK)
    added += deps.queue.enqueue(paths.slice(i, i + ENQUEUE_CHUNK), 'backlog');
  deps.cache.setFlag('initial_scan_complete', true);
  deps.logger.info({ paths: paths.length, added }, 'initial scan queued the store');
}

/** The rebuild note of a healed database (REBUILD_NOTE_KEY in src/state/heal.ts, without `note:`). */
const REBUILD_NOTE = 'rebuild';

function damagedOrLogged(deps: DaemonDeps, err: unknown): void {
  if (deps.onDatabaseDamaged && isDatabaseCorrupt(err)) deps.onDatabaseDamaged(err);
  else deps.logger.error({ err }, 'daemon status failed');
}

function logStatus(deps: DaemonDeps, uploadedSinceStart: number): void {
  const { pending, parked } = deps.queue.counts();
  const { backlog } = deps.queue.laneCounts();
  deps.queue.setState('last_watch_at', String(Date.now()));
  deps.logger.info({ queued: pending, scanBacklog: backlog, parked, uploadedSinceStart }, 'daemon status');
}

function abortedPromise(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
