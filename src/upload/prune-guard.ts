// An upload's side of mark, wait, sweep (src/prune/sweep-plan.ts, docs/architecture.md): what it
// must know about prunes other hosts run on the same bucket, read from `.loft/` with one small
// listing per batch (plus a GET of each state object this process has not seen yet).
//  - Before a batch: a marked (condemned) or deleted (gone) path counts as absent, whatever the
//    presence cache or a HEAD said, so it is uploaded again (which revives a marked one). A doomed
//    path, and so every path that needs it, fails with E_PRUNE_CONFLICT and waits for a later
//    batch: its narinfo may be deleted at any moment. A host that has not listed the state for
//    half a grace period while prunes ran may have missed deletions whose traces are gone: its
//    presence rows are dropped, and the bucket is asked again.
//  - Before each commit: if the last listing is older than settle/2, list again; a narinfo that
//    relies on a doomed or deleted path, or that is doomed itself, is not written. Presence answers
//    (and a NAR) older than half the grace period are not trusted: the path fails and is uploaded
//    in a later batch.
//  - Which grace: the bucket's record (`.loft/grace.json`, the shorter while a change waits), never
//    longer than this host's own; on a bucket without one, the shortest a pruner announced in a
//    state object still there. The record outlives every state object, so a host idle while a
//    short-grace prune marked, doomed and swept a path it remembers still learns the grace that
//    makes its presence rows stale (issue 22).
import type { PresenceCache } from '../state/presence.js';
import { PruneConflictError } from '../errors.js';
import { pruneView, uploaderGrace, type PruneView } from '../format/loft-state.js';
import type { Logger } from '../log.js';
import { readStates, type KnownState } from '../storage/loft-state-store.js';
import type { ObjectStore } from '../storage/object-store.js';

export interface PruneGuardDeps {
  store: ObjectStore;
  cache: PresenceCache;
  logger: Logger;
  /** This host's prune_grace_hours in ms; the bucket's, when shorter, wins. */
  graceMs: number;
  /** A monotonic clock in ms (durations only). */
  clock?: () => number;
  /** This host's wall clock, only to tell how long ago it last listed the state (persisted). */
  wallClock?: () => number;
}

export interface BatchView {
  /** Hash parts to treat as absent: upload them again. */
  absent: Set<string>;
  /** Hash parts being deleted by a prune: their uploads, and their referrers', fail for now. */
  blocked: Set<string>;
}

const NOTE = 'prune_state_seen';

export class PruneGuard {
  private readonly known: KnownState = { states: new Map() };
  private view: PruneView = pruneView([]);
  private readAt = -Infinity;
  private batchStart = -Infinity;
  private reading: Promise<unknown> | undefined;
  /** A read of the state started ahead of startBatch (readAhead), for it to use. */
  private ahead: Promise<number | undefined> | undefined;
  private readonly clock: () => number;
  private readonly wallClock: () => number;

  constructor(private readonly deps: PruneGuardDeps) {
    this.clock = deps.clock ?? (() => performance.now());
    this.wallClock = deps.wallClock ?? (() => Date.now());
  }

  now(): number {
    return this.clock();
  }

  /**
   * After the presence check (begun at `presenceAt`, from now()): reads the state. Returns true
   * when it dropped the presence rows as stale, and the presence must be asked again.
   */
  async startBatch(presenceAt: number, signal?: AbortSignal): Promise<boolean> {
    this.batchStart = presenceAt;
    const ahead = this.ahead;
    this.ahead = undefined;
    const clockAt = await (ahead ?? this.read(signal));
    const seen = parseNote(this.deps.cache.getNote(NOTE));
    const wall = this.wallClock();
    const idle = seen === undefined || wall - seen.at >= this.graceMs() / 2;
    const stale = clockAt !== undefined && seen?.clockAt !== clockAt && idle && this.deps.cache.count() > 0;
    if (stale) {
      // Deletions older than a grace period leave no gone object behind: rows from before them lie.
      this.deps.logger.info('prunes ran since this host last looked: its presence rows are checked again');
      this.deps.cache.clear();
      this.batchStart = this.clock();
    }
    this.deps.cache.setNote(
      NOTE,
      JSON.stringify({ at: wall, ...(clockAt !== undefined ? { clockAt } : {}) }),
    );
    return stale;
  }

  /**
   * Starts the read startBatch would make, so it overlaps the presence check (or Nix's answer).
   * Which listing comes first does not matter: a commit relies on a listing less than settle/2
   * old (beforeCommit), and on presence answers less than grace/2 old (from `presenceAt`).
   */
  readAhead(signal?: AbortSignal): void {
    if (this.ahead !== undefined) return;
    const ahead = this.read(signal);
    ahead.catch(() => undefined);
    this.ahead = ahead;
  }

  /** The batch needs no state after all (everything present): a later batch reads it afresh. */
  dropAhead(): void {
    this.ahead = undefined;
  }

  /** After the presence check: what to upload although present, and what must wait. */
  classify(candidates: readonly string[]): BatchView {
    const absent = new Set<string>();
    const blocked = new Set<string>();
    for (const h of candidates) {
      if (this.view.doomed.has(h)) blocked.add(h);
      else if (this.view.condemned.has(h) || this.view.gone.has(h)) absent.add(h);
    }
    this.deps.cache.remove([...absent, ...blocked]);
    return { absent, blocked };
  }

  /**
   * Right before a narinfo is written. `relied` are the references this batch did not upload
   * itself (it found them present).
   */
  async beforeCommit(hashPart: string, path: string, relied: readonly string[], signal?: AbortSignal) {
    if (this.clock() - this.readAt > uploaderGrace(this.deps.graceMs, this.view).settle / 2) {
      // Concurrent commits share one listing.
      this.reading ??= this.read(signal).finally(() => {
        this.reading = undefined;
      });
      await this.reading;
    }
    // Judged after the listing above: the bucket's grace may have appeared or shrunk since the batch
    // began (a first prune elsewhere records it), and a NAR older than half of the new one may be a
    // key that prune announced and has deleted since, its gone object with it.
    if (this.clock() - this.batchStart >= this.graceMs() / 2) {
      throw new PruneConflictError(
        `${path} not published: its batch's look at the bucket is older than half prune_grace_hours; ` +
          'it is uploaded again in a later batch',
      );
    }
    const lost = relied.find((h) => this.view.doomed.has(h) || this.view.gone.has(h));
    if (this.view.doomed.has(hashPart) || lost !== undefined) {
      throw new PruneConflictError(
        `${path} not published: a prune is deleting ${lost ?? 'it'}; it is uploaded again in a later batch`,
      );
    }
  }

  private graceMs(): number {
    return uploaderGrace(this.deps.graceMs, this.view).grace;
  }

  private async read(signal?: AbortSignal): Promise<number | undefined> {
    const started = this.clock();
    const { states, clockAt, grace } = await readStates({ ...this.deps, signal }, this.known);
    this.view = pruneView(states, grace?.record);
    this.readAt = started;
    return clockAt;
  }
}

function parseNote(text: string | undefined): { at: number; clockAt?: number } | undefined {
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as { at?: unknown; clockAt?: unknown };
    if (typeof v.at !== 'number') return undefined;
    return typeof v.clockAt === 'number' ? { at: v.at, clockAt: v.clockAt } : { at: v.at };
  } catch {
    return undefined;
  }
}
