// Noticing new store paths. node:fs.watch on the store directory (inotify on Linux, one watch, no
// directory read per event) gives hints; a periodic readdir diffed against the previous listing
// catches what the events missed (inotify queue overflow, a watcher that died and came back).
//
// On macOS fs.watch is FSEvents (libuv's src/unix/fsevents.c), which differs in two ways that
// matter here: the stream covers the whole tree, so every file a build writes inside a new store
// path reaches this process and libuv drops it for being in a subdirectory (CPU spent, nothing
// lost); and events the kernel or fseventsd dropped (kFSEventStreamEventFlagMustScanSubDirs,
// *Dropped) are discarded by libuv without a word, never reported as a null file name. So on
// macOS the periodic listing is the only safety net and runs more often (defaultReconcileMs); it
// costs one stat while the store does not change.
//
// What Nix 2.8 does in the store while it builds X (seen on this project's machine): `X.lock` is
// created, the output appears (renamed in, or written in place without a sandbox), Nix registers
// X as valid, then removes `X.lock`. The output exists BEFORE it is valid, so a hint is never
// trusted: the caller asks Nix about validity. An event on `X.lock` is read as a hint for X, since
// its removal is the moment X became valid. Nix's own scratch names (`.links`, `add-…`,
// `trash-…`, `X.drv.chroot`, `X.check`, dot-files) are not store path names and are dropped here.
import { watch, type FSWatcher } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { NixError, oneLine } from '../errors.js';
import { baseNameOfParsed } from '../format/store-path.js';
import { silentLogger, type Logger } from '../log.js';
import { storePathExists } from './path-exists.js';
import { SeenEntries, lookupKey, seenKey } from './seen-entries.js';
import { hintedPath, pathsChangedSince } from './store-hints.js';

export interface StoreWatcherOptions {
  /** The store directory to watch (a temp dir in tests). */
  storeDir: string;
  /** Receives batches of full store paths that exist; called again for later batches. */
  onPaths: (paths: string[]) => void;
  /** Report `.drv` files too. */
  uploadDerivations: boolean;
  /** A batch is delivered after this long without a new event (default 200 ms)... */
  quietMs?: number;
  /** ...or at the latest this long after its first event (default 2 s), even in a steady stream. */
  maxDelayMs?: number;
  /** Readdir reconciliation interval (default: defaultReconcileMs()); 0 turns it off. */
  reconcileMs?: number;
  /**
   * When given, start() also reports entries whose ctime is at or after this time (ms): paths that
   * arrived while no loft was watching. Nix sets mtime to 1 but the rename into the store and the
   * canonicalisation of permissions update ctime, so ctime is when the path landed.
   */
  since?: number;
  logger?: Logger;
}

/**
 * The default interval of the reconciling listing: a minute where the kernel's events are reliable
 * or say when they are not, 10 s on macOS, whose FSEvents losses libuv never reports (see above).
 */
export const defaultReconcileMs = (platform: NodeJS.Platform = process.platform): number =>
  platform === 'darwin' ? 10_000 : 60_000;

/** A watch that failed is re-opened after this pause; the reconciliation then covers the gap. */
const REWATCH_MS = 5000;

export class StoreWatcher {
  private watcher: FSWatcher | undefined;
  private readonly pending = new Set<string>();
  private quietTimer: NodeJS.Timeout | undefined;
  private maxTimer: NodeJS.Timeout | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private rewatchTimer: NodeJS.Timeout | undefined;
  /** The hints of the last listing plus every path reported since (compact: seen-entries.ts). */
  private readonly seen = new SeenEntries();
  private stopped = true;
  private readonly logger: Logger;
  private inFlight = new Set<Promise<void>>();
  /** The store directory's mtime taken just before the last listing (see reconcile). */
  private listedMtimeNs: bigint | undefined;

  constructor(private readonly opts: StoreWatcherOptions) {
    this.logger = opts.logger ?? silentLogger();
  }

  /** Lists the directory once (the baseline), then watches it. Resolves when watching. */
  async start(): Promise<void> {
    this.stopped = false;
    let names: string[];
    try {
      names = await readdir(this.opts.storeDir);
    } catch (err) {
      throw new NixError(
        `cannot watch the Nix store ${this.opts.storeDir}: ${oneLine(err)}; is Nix installed, and NIX_STORE_DIR right?`,
        { cause: err },
      );
    }
    this.remember(names);
    this.openWatch();
    const reconcileMs = this.opts.reconcileMs ?? defaultReconcileMs();
    if (reconcileMs > 0) {
      this.reconcileTimer = setInterval(
        () => this.track(this.reconcile({ skipIfUnchanged: true }).then(() => undefined)),
        reconcileMs,
      );
      this.reconcileTimer.unref();
    }
    if (this.opts.since !== undefined) await this.reportChangedSince(names, this.opts.since);
  }

  /**
   * Lists the store directory and reports entries that are new since the last listing and were
   * not reported by an event. Returns how many paths it reported.
   *
   * With `skipIfUnchanged` (the periodic run) the listing is skipped while the directory's mtime is
   * the one taken before the previous listing: adding or removing an entry changes it, so nothing
   * can have arrived. An idle daemon on a store of 100,000 entries then costs one stat a minute
   * instead of a listing. The mtime is read BEFORE listing, so a change during the listing shows.
   */
  async reconcile(options: { skipIfUnchanged?: boolean } = {}): Promise<number> {
    let names: string[];
    try {
      const mtimeNs = (await stat(this.opts.storeDir, { bigint: true })).mtimeNs;
      if (options.skipIfUnchanged && mtimeNs === this.listedMtimeNs) return 0;
      this.listedMtimeNs = mtimeNs;
      names = await readdir(this.opts.storeDir);
    } catch (err) {
      this.logger.warn({ err, storeDir: this.opts.storeDir }, 'cannot list the store directory');
      return 0;
    }
    const fresh = names.filter((n) => !this.seen.has(lookupKey(n)));
    this.remember(names);
    const paths = await this.existing(fresh);
    if (paths.length === 0) return 0;
    this.logger.info({ paths: paths.length }, 'reconciliation found paths the watcher missed');
    if (!this.deliver(paths)) {
      for (const p of paths) this.seen.delete(this.keyOf(p)); // the next listing tries again
      this.listedMtimeNs = undefined; // ... even if the directory does not change meanwhile
      return 0;
    }
    return paths.length;
  }

  /** Stops watching; a batch being collected is delivered first. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.close();
    this.watcher = undefined;
    if (this.reconcileTimer) clearInterval(this.reconcileTimer);
    if (this.rewatchTimer) clearTimeout(this.rewatchTimer);
    await this.flush();
    await Promise.allSettled([...this.inFlight]);
  }

  private openWatch(): void {
    try {
      this.watcher = watch(this.opts.storeDir, { persistent: true }, (_event, name) => this.onEvent(name));
    } catch (err) {
      this.watchFailed(err);
      return;
    }
    this.watcher.on('error', (err) => this.watchFailed(err));
  }

  /** A dead watch is re-opened after a pause; the reconciliation then covers the gap. */
  private watchFailed(err: unknown): void {
    this.logger.error({ err, storeDir: this.opts.storeDir }, 'watching the store failed; retrying');
    this.watcher?.close();
    this.watcher = undefined;
    if (this.stopped) return;
    this.rewatchTimer = setTimeout(() => {
      if (this.stopped) return;
      this.openWatch();
      this.track(this.reconcile().then(() => undefined));
    }, REWATCH_MS);
    this.rewatchTimer.unref();
  }

  private onEvent(name: string | Buffer | null): void {
    if (this.stopped) return;
    if (name === null) {
      // The kernel did not say which entry: only a listing can tell.
      this.track(this.reconcile().then(() => undefined));
      return;
    }
    this.pending.add(String(name));
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.quietTimer = setTimeout(() => this.track(this.flush()), this.opts.quietMs ?? 200);
    this.maxTimer ??= setTimeout(() => this.track(this.flush()), this.opts.maxDelayMs ?? 2000);
  }

  private async flush(): Promise<void> {
    if (this.quietTimer) clearTimeout(this.quietTimer);
    if (this.maxTimer) clearTimeout(this.maxTimer);
    this.quietTimer = undefined;
    this.maxTimer = undefined;
    if (this.pending.size === 0) return;
    const names = [...this.pending];
    this.pending.clear();
    const paths = await this.existing(names);
    // Only a delivered path counts as seen: if queueing failed, the next listing reports it again.
    if (paths.length > 0 && this.deliver(paths)) for (const p of paths) this.seen.add(this.keyOf(p));
  }

  /** The hinted paths of `names` that exist now (a removal, e.g. by the GC, is no hint). */
  private async existing(names: readonly string[]): Promise<string[]> {
    const { storeDir, uploadDerivations } = this.opts;
    const candidates = new Set<string>();
    for (const n of names) {
      const p = hintedPath(n, storeDir, uploadDerivations);
      if (p !== undefined) candidates.add(p);
    }
    const out: string[] = [];
    for (const p of candidates) if (await storePathExists(p)) out.push(p);
    return out;
  }

  private async reportChangedSince(names: readonly string[], since: number): Promise<void> {
    const found = await pathsChangedSince(names, since, this.opts.storeDir, this.opts.uploadDerivations);
    if (found.length > 0) {
      this.logger.info({ paths: found.length }, 'found paths added while loft was not running');
      this.deliver(found);
    }
  }

  private deliver(paths: string[]): boolean {
    try {
      this.opts.onPaths(paths);
      return true;
    } catch (err) {
      this.logger.error({ err, paths: paths.length }, 'could not queue new store paths');
      return false;
    }
  }

  /** Replaces what is remembered by the hints among a listing's `names`. */
  private remember(names: readonly string[]): void {
    const { storeDir, uploadDerivations } = this.opts;
    const keys: string[] = [];
    for (const n of names) {
      const p = hintedPath(n, storeDir, uploadDerivations);
      if (p !== undefined) keys.push(seenKey(n, baseNameOfParsed(p)));
    }
    this.seen.reset(keys);
  }

  /** The key of a reported path (the path's own entry, not its `.lock`). */
  private keyOf(path: string): string {
    const base = baseNameOfParsed(path);
    return seenKey(base, base);
  }

  /** Keeps background work visible to stop(), and never lets it reject unobserved. */
  private track(work: Promise<void>): void {
    const p = work.catch((err: unknown) => this.logger.error({ err }, 'store watcher task failed'));
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }
}
