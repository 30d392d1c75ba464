// Whether the object store accepts the daemon's requests, as the daemon last saw it. Credentials
// revoked, a bucket deleted, a policy that now says AccessDenied: the whole target refuses (a
// target failure, src/errors.ts), every path would fail the same way, and only a person can fix it.
// The daemon then keeps its queue, looks again rarely (BACKOFF.accessLost) and resumes by itself
// once a look succeeds. This module only remembers and tells: one log line when access is lost and
// one when it returns (not one per path or per look), a record in the database for
// `loft --status` (another process), and the numbers /metrics shows.
import { oneLine } from '../errors.js';
import { NIX_CACHE_INFO_KEY } from '../format/bucket-layout.js';
import type { Logger } from '../log.js';
import type { ObjectStore } from '../storage/object-store.js';

export interface AccessLost {
  /** When access was first refused, ms since the epoch. */
  since: number;
  /** The StorageError's code, e.g. E_STORAGE_AUTH. */
  code: string;
  /** Its one-line message (names bucket and endpoint, never credentials). */
  message: string;
}

export interface AccessStateOptions {
  logger: Logger;
  /** Writes the record where `loft --status` reads it; undefined clears it. */
  persist?: (lost: AccessLost | undefined) => void;
  /** What the last run recorded (a daemon restarted while access was lost). */
  initial?: AccessLost | undefined;
  now?: () => number;
}

export class AccessState {
  #lost: AccessLost | undefined;
  /** Times access was lost since the daemon started. */
  lostCount = 0;

  constructor(private readonly opts: AccessStateOptions) {
    this.#lost = opts.initial;
  }

  get lost(): AccessLost | undefined {
    return this.#lost;
  }

  /** The target refused: logs and records only when access was not already lost. */
  markLost(err: unknown, queued: number): void {
    if (this.#lost !== undefined) return;
    const code = (err as { code?: unknown } | null)?.code;
    this.#lost = {
      since: (this.opts.now ?? Date.now)(),
      code: typeof code === 'string' ? code : 'E_STORAGE',
      message: oneLine(err),
    };
    this.lostCount++;
    this.opts.persist?.(this.#lost);
    this.opts.logger.error(
      { code: this.#lost.code, error: this.#lost.message, queued },
      'object store refuses loft: uploads paused, the queue is kept; looking again with backoff (up to 10 min)',
    );
  }

  /** A request succeeded: logs and records only when access had been lost. */
  markOk(): void {
    const was = this.#lost;
    if (was === undefined) return;
    this.#lost = undefined;
    this.opts.persist?.(undefined);
    const lostForMs = (this.opts.now ?? Date.now)() - was.since;
    this.opts.logger.info({ lostForMs }, 'object store accepts loft again: uploads resumed');
  }
}

/** The record as stored in the database (`daemon_state`), '' when access is fine. */
export function encodeAccessLost(lost: AccessLost | undefined): string {
  return lost === undefined ? '' : JSON.stringify(lost);
}

export function decodeAccessLost(value: string | undefined): AccessLost | undefined {
  if (!value) return undefined;
  try {
    const v = JSON.parse(value) as Partial<AccessLost>;
    if (typeof v.since === 'number' && typeof v.code === 'string' && typeof v.message === 'string') {
      return { since: v.since, code: v.code, message: v.message };
    }
  } catch {
    // a damaged record says nothing
  }
  return undefined;
}

/**
 * One cheap request that fails the way uploads would: a listing limited to the nix-cache-info key.
 * A HEAD would not do: S3 answers a HEAD in a deleted bucket with a bare 404, which looks like a
 * missing object, while a listing says NoSuchBucket.
 */
export async function probeAccess(store: ObjectStore, signal?: AbortSignal): Promise<void> {
  for await (const object of store.list(NIX_CACHE_INFO_KEY, signal)) {
    void object;
    break;
  }
}
