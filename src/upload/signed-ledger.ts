// What this process knows, and tells other hosts, about narinfos signed by its key: the records
// under `.loft/signed/<key id>/` (format/signed-record.ts). re-sign.ts asks `vouches` before it
// GETs a present narinfo; the narinfo commit (upload-path.ts) and re-sign.ts `note` the ETag of
// every narinfo they wrote or read with our signature; `flush` writes this process's own record.
//  - One object per writer (a process, a new id once it holds MAX_ENTRIES), rewritten only by it,
//    so several hosts never lose each other's entries and need no conditional write.
//  - A reader lists the key's folder and GETs each record. Over COMPACT_OVER records, it folds
//    them into its own (keeping only entries a complete listing still shows with the same ETag)
//    and deletes the ones it read once its own is written: a record lost to a race, to the
//    original Loft's age-based prune or to a crash costs GETs, never a wrong answer.
// Every failure here is logged and ignored: the record only ever saves requests.
import { randomBytes } from 'node:crypto';
import pLimit from 'p-limit';
import {
  parseSignedRecord,
  renderSignedRecord,
  signedRecordKey,
  signedRecordPrefix,
  type SignedEntry,
} from '../format/signed-record.js';
import type { Logger } from '../log.js';
import type { ObjectStore } from '../storage/object-store.js';

export interface SignedLedgerDeps {
  store: ObjectStore;
  /** Our public key, `name:base64`. */
  publicKey: string;
  logger: Logger;
  /** A long-running process writes its record at most this often (0: at every flush). */
  minFlushIntervalMs?: number;
  /** Records read again after this long (a daemon learns other hosts' entries). */
  reloadAfterMs?: number;
  clock?: () => number;
}

/** Records read at once. */
const GET_CONCURRENCY = 16;
/** A reader that finds more records than this folds them into its own. */
export const COMPACT_OVER = 8;
/** A writer's record holds at most this many entries (about 70 bytes each); then it starts anew. */
export const MAX_ENTRIES = 50_000;

export class SignedLedger {
  private readonly prefix: string;
  private writer = newWriterId();
  /** Entries of other records, as last read. */
  private others = new Map<string, SignedEntry>();
  /** This writer's entries: what its record holds, or will once flushed. */
  private readonly mine = new Map<string, SignedEntry>();
  private dirty = false;
  /** Records read that a successful write of ours replaces (compaction), and their entries. */
  private replaces: string[] = [];
  private folded: Map<string, SignedEntry> | undefined;
  private loading: Promise<void> | undefined;
  private loadedAt = -Infinity;
  private writtenAt = -Infinity;
  private readonly clock: () => number;

  constructor(private readonly deps: SignedLedgerDeps) {
    this.prefix = signedRecordPrefix(deps.publicKey);
    this.clock = deps.clock ?? (() => performance.now());
  }

  /** Reads the records (once, or again after reloadAfterMs); never rejects. */
  load(signal?: AbortSignal): Promise<void> {
    const stale = this.clock() - this.loadedAt >= (this.deps.reloadAfterMs ?? Infinity);
    if (this.loading === undefined || stale) {
      this.loadedAt = this.clock();
      this.loading = this.read(signal).catch((err: unknown) => {
        this.deps.logger.debug({ err }, 'signed records not read; present narinfos are read instead');
      });
    }
    return this.loading;
  }

  /** The narinfo listed with `etag` carries our signature over the fingerprint with this digest. */
  vouches(hashPart: string, etag: string | undefined, fingerprint: string): boolean {
    if (etag === undefined || etag === '') return false;
    const e = this.mine.get(hashPart) ?? this.others.get(hashPart);
    return e !== undefined && e.etag === etag && e.fingerprint === fingerprint;
  }

  /** We wrote, or read, the narinfo with this ETag, carrying our signature over `fingerprint`. */
  note(hashPart: string, etag: string, fingerprint: string): void {
    if (etag === '') return;
    const e = this.mine.get(hashPart);
    if (e?.etag === etag && e.fingerprint === fingerprint) return;
    this.mine.set(hashPart, { etag, fingerprint });
    this.dirty = true;
  }

  /**
   * Writes this writer's record if it changed (and the interval allows), then deletes the records
   * it replaces. `listed`: every narinfo's ETag from a complete listing of this run, so that
   * records folded in lose the entries of narinfos gone or rewritten since. Never rejects.
   */
  async flush(listed?: ReadonlyMap<string, string>, signal?: AbortSignal): Promise<void> {
    if (!this.dirty) return;
    if (this.clock() - this.writtenAt < (this.deps.minFlushIntervalMs ?? 0)) return;
    for (const [h, e] of this.folded ?? []) {
      if (!this.mine.has(h) && (listed === undefined || listed.get(h) === e.etag)) this.mine.set(h, e);
    }
    this.folded = undefined;
    const replaced = this.replaces;
    const key = signedRecordKey(this.deps.publicKey, this.writer);
    try {
      await this.deps.store.putBytes(key, renderSignedRecord(this.deps.publicKey, this.mine), {
        contentType: 'application/json',
        ...(signal ? { signal } : {}),
      });
      this.dirty = false;
      this.writtenAt = this.clock();
      this.replaces = [];
      if (replaced.length > 0) await this.deps.store.deleteMany(replaced, signal);
    } catch (err) {
      this.deps.logger.debug({ err }, 'signed record not written; other hosts read narinfos instead');
    }
    if (this.mine.size >= MAX_ENTRIES) {
      this.writer = newWriterId();
      this.mine.clear();
    }
  }

  private async read(signal?: AbortSignal): Promise<void> {
    const keys: string[] = [];
    for await (const o of this.deps.store.list(this.prefix, signal)) keys.push(o.key);
    const own = signedRecordKey(this.deps.publicKey, this.writer);
    const theirs = keys.filter((k) => k !== own);
    const merged = new Map<string, SignedEntry>();
    const limit = pLimit(GET_CONCURRENCY);
    await Promise.all(
      theirs.map((k) =>
        limit(async () => {
          const body = await this.deps.store.get(k, signal);
          if (body === undefined) return;
          try {
            for (const [h, e] of parseSignedRecord(body.toString('utf8'), this.deps.publicKey)) {
              merged.set(h, e);
            }
          } catch (err) {
            this.deps.logger.debug({ err, key: k }, 'unreadable signed record ignored');
          }
        }),
      ),
    );
    this.others = merged;
    if (theirs.length > COMPACT_OVER) this.foldIn(theirs);
  }

  /** Our next write carries every entry read, and replaces the records read. */
  private foldIn(keys: string[]): void {
    this.folded = new Map(this.others);
    this.dirty = true;
    this.replaces = keys;
  }
}

/** A writer id that no other process draws: the time and 48 random bits. */
function newWriterId(): string {
  return `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
}
