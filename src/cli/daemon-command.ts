// `loft -c loft.toml` without an action flag: the store-watching daemon as a process. This file
// owns the process concerns (signals, the forced exit, releasing what was opened) and wiring only:
// it opens things and hands them in. src/daemon/ owns the work and its decisions (what the prune
// timer runs, what the metrics count, which roots are published, how the cache is populated).
// Shutdown follows graphile-worker's shape: every opened thing pushes its release function, the
// list runs in `finally` in reverse, and an unref'd timer forces the exit if a release hangs.
import { recordingMemory } from './memory-use.js';
import { hostname } from 'node:os';
import type { Config } from '../config/schema.js';
import { releaseAll, type Release } from '../release-list.js';
import { runDaemon } from '../daemon/daemon.js';
import { waitForStorage } from '../daemon/storage-ready.js';
import type { ScheduledPrune } from '../daemon/prune-loop.js';
import { DaemonMetrics } from '../daemon/metrics.js';
import { AccessState, decodeAccessLost, encodeAccessLost, probeAccess } from '../daemon/access-state.js';
import { startMetricsServer } from '../daemon/metrics-server.js';
import { countedUploads } from '../daemon/counted-uploads.js';
import { populateCache } from '../daemon/populate-cache.js';
import { publishConfiguredRoots } from '../daemon/roots-publisher.js';
import { pruneScheduleOf, scheduledPrune } from '../daemon/scheduled-prune.js';
import { pruneDeps, pruneSettings } from './prune-command.js';
import { UploadQueue } from '../state/queue.js';
import { healStateDb, openStateDb } from '../state/database.js';
import { isDatabaseCorrupt, isSound } from '../state/heal.js';
import { ExitCode, type ExitCodeValue } from '../errors.js';
import type { Logger } from '../log.js';
import { listValidStorePaths } from '../store/all-paths.js';
import { NIX_CACHE_INFO_KEY } from '../format/bucket-layout.js';
import { populateDeps } from './cache-commands.js';
import { batchUploader } from './batch-uploader.js';
import { openRuntime, type Runtime } from './runtime.js';
import { FRESH_START_SLACK_MS, FreshStart, takeFreshStartMark } from './fresh-start.js';

/** Uploads in progress may finish for this long after SIGTERM/SIGINT; then they are aborted. */
export const SHUTDOWN_GRACE_MS = 30_000;
/** After the grace period, releasing everything gets this long before the process exits anyway. */
const FORCED_EXIT_AFTER_MS = SHUTDOWN_GRACE_MS + 15_000;

export async function runDaemonCommand(
  config: Config,
  logger: Logger,
  fresh = new FreshStart(config.populateCacheOnStartup ? 0 : config.freshStartAfterUploads),
): Promise<ExitCodeValue> {
  const releases: Release[] = [];
  const stop = new AbortController();
  releases.push(installSignalHandlers(stop, logger));
  const afresh = takeFreshStartMark();
  let ended: ExitCodeValue | undefined;
  try {
    // SQLite may call the local database damaged while the daemon runs: everything is closed, the
    // file heals (src/state/heal.ts: moved aside, a fresh one rebuilt) and the daemon starts again
    // in this process, so a service heals without a restart by systemd.
    for (;;) {
      const damaged = new AbortController();
      try {
        const code = await runDaemonOnce(config, logger, stop.signal, damaged, { fresh, afresh });
        if (!damaged.signal.aborted || stop.signal.aborted) return (ended = code);
        healClosedDb(config.localCachePath, damaged.signal.reason, logger);
      } catch (err) {
        if (!isDatabaseCorrupt(err) || stop.signal.aborted) throw err;
        healClosedDb(config.localCachePath, err, logger);
      }
    }
  } finally {
    await releaseAll(releases, (err) => logger.error({ err }, 'error while releasing daemon resources'));
    // Everything is closed and the signal handlers are gone. A stop asked for meanwhile wins, and a
    // daemon that failed on its way out reports it rather than start again.
    if (ended === ExitCode.ok && fresh.signal.aborted && !stop.signal.aborted) fresh.replaceProcess();
  }
}

/**
 * Heals the file the daemon found damaged, now that it is closed; unless the file there now is
 * sound (another loft process, `--enqueue`, healed it first: moving it would lose its rows).
 */
function healClosedDb(path: string, cause: unknown, logger: Logger): void {
  const opts = { logger: logger.child({ component: 'state' }) };
  const db = openStateDb(path, opts);
  const sound = isSound(db);
  db.close();
  if (!sound) healStateDb(path, cause, opts).close();
}

async function runDaemonOnce(
  config: Config,
  logger: Logger,
  stopSignal: AbortSignal,
  damaged: AbortController,
  restart: { fresh: FreshStart; afresh: boolean },
): Promise<ExitCodeValue> {
  const releases: Release[] = [];
  const stop = { signal: AbortSignal.any([stopSignal, damaged.signal, restart.fresh.signal]) };
  try {
    const rt = await openRuntime(config, logger);
    releases.push(() => rt.close());
    const queue = UploadQueue.open(config.localCachePath);
    releases.push(() => queue.close());
    const access = new AccessState({
      logger: logger.child({ component: 'storage' }),
      initial: decodeAccessLost(queue.getState('storage_access')),
      persist: (lost) => queue.setState('storage_access', encodeAccessLost(lost)),
    });
    const metrics = new DaemonMetrics();
    metrics.access = access;
    // Before waiting for the bucket: a scrape then shows the daemon up (and its queue) during an
    // outage, and a port already taken fails the start at once (exit 3) rather than later.
    if (config.metricsListen) {
      const server = await startMetricsServer(config.metricsListen, () =>
        metrics.render({ ...queue.counts(), backlog: queue.laneCounts().backlog }),
      );
      releases.push(() => server.close());
      logger.info({ address: server.address }, 'serving Prometheus metrics at /metrics');
    }
    // Opening the store runs its access check (bucket, credentials, that it is S3 at all).
    const probe = () => rt.store.head(NIX_CACHE_INFO_KEY, stop.signal);
    if (!(await waitForStorage(probe, logger.child({ component: 'storage' }), stop.signal))) {
      return ExitCode.ok;
    }
    access.markOk(); // clears what a run stopped while access was lost recorded
    releases.push(
      publishConfiguredRoots({
        entries: config.publishRoots,
        storeDir: config.storeDir,
        store: rt.store,
        host: hostname(),
        logger: logger.child({ component: 'roots' }),
      }),
    );
    await runDaemon(
      {
        queue,
        cache: rt.cache,
        upload: countedUploads(
          recordingMemory(restart.fresh.counting(batchUploader(rt)), rt, queue, undefined, {
            afterIdleRelease: () => askFreshStart(restart.fresh, queue, logger),
            releaseAfterStart: restart.afresh,
          }),
          metrics,
        ),
        listValidPaths: () => listValidStorePaths(config.storeDir),
        populateCache: async () => logger.info(await populateCache(populateDeps(rt), false)),
        ...schedulePrune(rt, metrics),
        access,
        probeAccess: (signal) => probeAccess(rt.store, signal),
        onDatabaseDamaged: (err) => damaged.abort(err),
        logger,
      },
      {
        storeDir: config.storeDir,
        uploadDerivations: config.uploadDerivations,
        scanOnStartup: config.scanOnStartup,
        populateCacheOnStartup: config.populateCacheOnStartup,
        ...(config.signingKey ? { signingKeyName: config.signingKey.name } : {}),
        graceMs: SHUTDOWN_GRACE_MS,
        ...(restart.afresh ? { catchUpSlackMs: FRESH_START_SLACK_MS } : {}),
        // Small batches: a stop request waits only for the batch in flight, not for hundreds of paths.
        batchSize: Math.max(16, config.uploadThreads * 4),
      },
      stop.signal,
    );
    return ExitCode.ok;
  } finally {
    await releaseAll(releases, (err) => logger.error({ err }, 'error while releasing daemon resources'));
  }
}

/** Asks for a fresh start (cli/fresh-start.ts) when it is due; never ends the daemon by failing. */
function askFreshStart(fresh: FreshStart, queue: UploadQueue, logger: Logger): void {
  try {
    if (fresh.requestIfDue(queue.counts())) {
      logger.info(
        { uploadedSinceStart: fresh.pathsUploaded, rssBytes: process.memoryUsage.rss() },
        'idle after many uploads: starting afresh to give their memory back',
      );
    }
  } catch (err) {
    logger.warn({ err }, 'could not look at the queue; not starting afresh');
  }
}

/** The prune the daemon's timer runs, when loft.prune_schedule asks for one (daemon/scheduled-prune.ts). */
function schedulePrune(rt: Runtime, metrics: DaemonMetrics): { prune?: ScheduledPrune } {
  const schedule = pruneScheduleOf(rt.config.prune);
  if (!schedule) return {};
  const deps = { prune: pruneDeps(rt), metrics, host: hostname(), logger: rt.logger };
  return { prune: scheduledPrune(schedule, pruneSettings(rt.config.prune), deps) };
}

/**
 * The first SIGTERM/SIGINT asks the daemon to stop (systemd sends SIGTERM; the original Loft only
 * handled SIGINT); a second one, or a shutdown that hangs, exits at once with 130.
 */
function installSignalHandlers(stop: AbortController, logger: Logger): Release {
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(ExitCode.interrupted);
    }
    logger.info({ signal }, 'signal received: shutting down');
    stop.abort();
    const forced = setTimeout(() => {
      logger.error({ afterMs: FORCED_EXIT_AFTER_MS }, 'shutdown did not finish in time: exiting now');
      process.exit(ExitCode.interrupted);
    }, FORCED_EXIT_AFTER_MS);
    forced.unref();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}
