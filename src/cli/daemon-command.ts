// `loft -c loft.toml` without an action flag: the store-watching daemon as a process. This file
// owns the process concerns (signals, the forced exit, releasing what was opened); src/daemon/
// owns the work. Shutdown follows graphile-worker's shape: every opened thing pushes its release
// function, the list runs in `finally` in reverse, and an unref'd timer forces the exit if a release
// hangs.
import { hostname } from 'node:os';
import type { Config } from '../config/schema.js';
import { releaseAll, type Release } from '../release-list.js';
import { parsePruneSchedule } from '../prune/schedule-syntax.js';
import { runDaemon } from '../daemon/daemon.js';
import { waitForStorage } from '../daemon/storage-ready.js';
import type { ScheduledPrune } from '../daemon/prune-loop.js';
import type { UploadBatch } from '../daemon/worker.js';
import { PruneDb } from '../state/prune-db.js';
import { runPruneOnce } from '../prune/prune-run.js';
import { DaemonMetrics } from '../daemon/metrics.js';
import { startMetricsServer } from '../daemon/metrics-server.js';
import { runSweepOnce } from '../prune/sweep-run.js';
import { pruneSettings } from './prune-command.js';
import { UploadQueue } from '../state/queue.js';
import { ExitCode, type ExitCodeValue } from '../errors.js';
import type { Logger } from '../log.js';
import { startRootsPublisher } from '../daemon/roots-publisher.js';
import { listValidStorePaths } from '../store/all-paths.js';
import { resolveHostRoots } from '../store/host-roots.js';
import { NIX_CACHE_INFO_KEY } from '../format/bucket-layout.js';
import { runPopulateCache } from './cache-commands.js';
import { batchUploader } from './batch-uploader.js';
import { openRuntime, type Runtime } from './runtime.js';

/** Uploads in progress may finish for this long after SIGTERM/SIGINT; then they are aborted. */
export const SHUTDOWN_GRACE_MS = 30_000;
/** After the grace period, releasing everything gets this long before the process exits anyway. */
const FORCED_EXIT_AFTER_MS = SHUTDOWN_GRACE_MS + 15_000;

export async function runDaemonCommand(config: Config, logger: Logger): Promise<ExitCodeValue> {
  const releases: Release[] = [];
  const stop = new AbortController();
  releases.push(installSignalHandlers(stop, logger));
  try {
    const rt = await openRuntime(config, logger);
    releases.push(() => rt.close());
    const queue = UploadQueue.open(config.localCachePath);
    releases.push(() => queue.close());
    const metrics = new DaemonMetrics();
    // Before waiting for the bucket: a scrape then shows the daemon up (and its queue) during an
    // outage, and a port already taken fails the start at once (exit 3) rather than later.
    if (config.metricsListen) {
      const server = await startMetricsServer(config.metricsListen, () => metrics.render(queue.counts()));
      releases.push(() => server.close());
      logger.info({ address: server.address }, 'serving Prometheus metrics at /metrics');
    }
    // Opening the store runs its access check (bucket, credentials, that it is S3 at all).
    const probe = () => rt.store.head(NIX_CACHE_INFO_KEY, stop.signal);
    if (!(await waitForStorage(probe, logger.child({ component: 'storage' }), stop.signal))) {
      return ExitCode.ok;
    }
    releases.push(rootsPublisher(rt));
    await runDaemon(
      {
        queue,
        cache: rt.cache,
        upload: countedUploads(batchUploader(rt), metrics),
        listValidPaths: () => listValidStorePaths(config.storeDir),
        populateCache: () => runPopulateCache(rt, false, (line) => logger.info(line)),
        ...scheduledPrune(rt, releases, metrics),
        logger,
      },
      {
        storeDir: config.storeDir,
        uploadDerivations: config.uploadDerivations,
        scanOnStartup: config.scanOnStartup,
        populateCacheOnStartup: config.populateCacheOnStartup,
        ...(config.signingKey ? { signingKeyName: config.signingKey.name } : {}),
        graceMs: SHUTDOWN_GRACE_MS,
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

/** loft.publish_roots: what this host runs, kept by every host's prunes (README, Pruning). */
function rootsPublisher(rt: Runtime): Release {
  const entries = rt.config.publishRoots;
  if (entries.length === 0) return () => Promise.resolve();
  const publisher = startRootsPublisher({
    store: rt.store,
    host: hostname(),
    resolve: () => resolveHostRoots(entries, rt.config.storeDir),
    logger: rt.logger.child({ component: 'roots' }),
    everyMs: ROOTS_EVERY_MS,
  });
  return () => publisher.stop();
}

/** Often enough that a daemon that runs keeps its roots far younger than any retention (>= 1 day). */
const ROOTS_EVERY_MS = 6 * 3_600_000;

/** loft.prune_schedule, when pruning is enabled and scheduled: the same prune as `loft --prune`. */
function scheduledPrune(
  rt: Runtime,
  releases: Release[],
  metrics: DaemonMetrics,
): { prune?: ScheduledPrune } {
  const p = rt.config.prune;
  const schedule = p.enabled && p.schedule !== undefined ? parsePruneSchedule(p.schedule) : undefined;
  if (!schedule) return {};
  const db = PruneDb.open(rt.cache.path, rt.cache.target);
  releases.push(() => db.close());
  const deps = {
    store: rt.store,
    db,
    cache: rt.cache,
    storeDir: rt.config.storeDir,
    logger: rt.logger.child({ component: 'prune' }),
  };
  const settings = pruneSettings(p);
  const run = async () => {
    let deleted: number;
    try {
      if (settings.graceHours > 0) {
        const { counts, lease } = await runSweepOnce(deps, { settings, dryRun: false, host: hostname() });
        rt.logger.info({ ...counts, lease: lease.kind }, 'scheduled prune finished');
        deleted = counts.narinfosDeleted;
      } else {
        const result = await runPruneOnce(deps, { settings, now: new Date(), dryRun: false });
        deleted = result.plan.paths.length;
        rt.logger.info(
          { deleted, orphans: result.plan.orphans.length, bytes: result.plan.pathBytes },
          'scheduled prune finished',
        );
      }
    } catch (err) {
      metrics.lastPrune = { at: Date.now(), ok: false, deletedPaths: 0 };
      throw err;
    }
    metrics.lastPrune = { at: Date.now(), ok: true, deletedPaths: deleted };
  };
  return { prune: { schedule, run } };
}

/** The worker's uploader, with every batch's outcome counted for the metrics. */
function countedUploads(upload: UploadBatch, metrics: DaemonMetrics): UploadBatch {
  return async (paths, signal) => {
    try {
      const report = await upload(paths, signal);
      metrics.recordBatch(report);
      return report;
    } catch (err) {
      metrics.failedBatches++;
      throw err;
    }
  };
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
