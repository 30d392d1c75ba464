// What `--status` says about the memory budget (`memory_budget`, src/memory-budget.ts): the budget
// the config sets, and what the last process that uploaded lent from it (in use when it wrote the
// record, and its peak). Uploads write the record into the state database (daemon_state key
// `memory_budget`): after every daemon batch and at the end of `--upload-path`, so `--status`, a
// separate process, reads it without asking the daemon.
import type { MemoryBudgetUse } from '../memory-budget.js';
import type { UploadQueue } from '../state/queue.js';
import type { Runtime } from './runtime.js';
import { formatBytes } from './format-size.js';
import { closeIdleZstdContexts } from '../upload/zstd-contexts.js';
import { shrinkStateDbMemory } from '../state/database.js';
import { trimNativeHeap, type TrimOutcome } from '../state/native-heap-trim.js';
import { collectV8Garbage } from '../v8-heap.js';

interface MemoryRecord extends MemoryBudgetUse {
  pid: number;
  /** When it was written (ms). */
  at: number;
}

/** Writes what `rt`'s uploads lent; nothing when the runtime uploaded nothing. */
export function recordMemoryUse(queue: Pick<UploadQueue, 'setState'>, rt: Runtime): void {
  const budget = rt.uploads?.memoryBudget;
  if (budget === undefined) return;
  const record: MemoryRecord = { ...budget.use(), pid: process.pid, at: Date.now() };
  queue.setState('memory_budget', JSON.stringify(record));
}

/**
 * `memory budget: 96.0 MiB; in use 52.0 MiB, peak 88.0 MiB (pid 123 at T)`. The record is shown
 * only when it was written under the same budget (a changed config makes it stale).
 */
export function memoryBudgetLine(budgetBytes: number, stored: string | undefined): string {
  const head = `memory budget: ${formatBytes(budgetBytes)} (loft.memory_budget)`;
  const r = decode(stored);
  if (r === undefined || r.total !== budgetBytes) return `${head}; no upload has reported its use yet`;
  return (
    `${head}; in use ${formatBytes(r.inUse)}, peak ${formatBytes(r.peak)} ` +
    `(pid ${r.pid} at ${new Date(r.at).toISOString()})`
  );
}

function decode(stored: string | undefined): MemoryRecord | undefined {
  if (stored === undefined || stored === '') return undefined;
  try {
    const r = JSON.parse(stored) as Partial<MemoryRecord>;
    const fields = [r.total, r.inUse, r.peak, r.pid, r.at];
    return fields.every((v) => typeof v === 'number' && Number.isFinite(v)) ? (r as MemoryRecord) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Gives back what a runtime's pools keep between uploads (frame buffers, NAR reads, zstd contexts
 * and their output, S3 part buffers, the NAR worker threads with their buffers and contexts): a
 * daemon that has gone idle should not hold them. The next upload refills them. SQLite's page
 * caches are emptied (state/database.ts). Then V8's heap is collected and shrunk (src/v8-heap.ts),
 * which also frees the pools' Buffers, and the C heap's free pages go back to the system
 * (native-heap-trim.ts): after a store scan's uploads these two are most of an idle daemon's
 * memory.
 */
export function releaseIdleMemory(
  rt: Runtime,
  release: Pick<IdleRelease, 'shrinkDatabase' | 'collect' | 'trim'>,
): void {
  rt.uploads?.computePool.drain();
  rt.uploads?.narWorkers.close();
  // Idle zstd contexts hold their last output slab until closed: close them first, so the slabs
  // are back in NarMemory's pool when it is drained.
  closeIdleZstdContexts();
  rt.uploads?.narMemory.drain();
  rt.store.releaseIdleMemory?.();
  release.shrinkDatabase();
  release.collect();
  release.trim();
}

/** How long the daemon's uploader must be idle before its pools are given back. */
const IDLE_RELEASE_MS = 5_000;
/**
 * A second trim: V8 hands the backing stores of the Buffers its collection found dead back to
 * malloc from a background thread, after the first trim may have run.
 */
const LATE_TRIM_MS = 30_000;

export interface IdleRelease {
  idleMs: number;
  lateTrimMs: number;
  /** Empties the local database connections' page caches. */
  shrinkDatabase: () => unknown;
  /** A memory-reducing collection of V8's heap. */
  collect: () => unknown;
  trim: () => TrimOutcome;
}

const DEFAULT_IDLE_RELEASE: IdleRelease = {
  idleMs: IDLE_RELEASE_MS,
  lateTrimMs: LATE_TRIM_MS,
  shrinkDatabase: shrinkStateDbMemory,
  collect: collectV8Garbage,
  trim: trimNativeHeap,
};

export interface IdleHooks {
  /** Runs after each idle release (cli/fresh-start.ts asks for a fresh start there). */
  afterIdleRelease?: () => void;
  /**
   * Counts the start as the end of a batch: a daemon started afresh has the garbage of its start
   * (a listing of the whole store) and no batch that would be followed by a release.
   */
  releaseAfterStart?: boolean;
}

/**
 * The daemon's uploader, recording the budget's use after every batch and giving the pools' memory
 * back once no batch has run for `idleMs`, and the C heap's free pages once more after `lateTrimMs`.
 */
export function recordingMemory<A extends unknown[], R>(
  upload: (...args: A) => Promise<R>,
  rt: Runtime,
  queue: Pick<UploadQueue, 'setState'>,
  release: IdleRelease = DEFAULT_IDLE_RELEASE,
  hooks: IdleHooks = {},
): (...args: A) => Promise<R> {
  let running = 0;
  let idle: NodeJS.Timeout | undefined;
  let late: NodeJS.Timeout | undefined;
  const arm = () => {
    idle = setTimeout(() => {
      bestEffort(() => releaseIdleMemory(rt, release));
      hooks.afterIdleRelease?.();
    }, release.idleMs);
    late = setTimeout(() => bestEffort(release.trim), release.lateTrimMs);
    idle.unref();
    late.unref();
  };
  if (hooks.releaseAfterStart) arm();
  return async (...args) => {
    running++;
    clearTimeout(idle);
    clearTimeout(late);
    try {
      return await upload(...args);
    } finally {
      running--;
      recordMemoryUse(queue, rt);
      if (running === 0) arm();
    }
  };
}

/** Giving memory back is never worth the daemon: an error there (in a timer) must not end it. */
function bestEffort(release: () => unknown): void {
  try {
    release();
  } catch {
    // The memory stays with the process until the next idle period; uploads go on.
  }
}
