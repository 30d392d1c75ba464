// What `loft doctor` finds out about a target, one check at a time, and the checks that work through
// the ObjectStore interface alone (so a directory target gets them too): write, read back and delete
// a key under `.loft/`, a conditional create, and whether nix-cache-info is there. Every key a check
// writes is named in its result and removed before the check returns.
import { randomBytes } from 'node:crypto';
import { StorageError } from '../errors.js';
import { LOFT_PREFIX } from '../format/loft-state.js';
import type { ObjectStore } from './object-store.js';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  /** Stable, for scripts: "reach", "tls", "credentials", ... */
  id: string;
  status: CheckStatus;
  /** What was found, one line. */
  detail: string;
  /** What to do about a warn or fail, one line. */
  fix?: string;
  /** Keys this check wrote (all deleted again unless `leftBehind` says otherwise). */
  wrote?: string[];
  leftBehind?: string[];
}

/** A fresh key under `.loft/` for one check, e.g. `.loft/doctor-1a2b3c4d-object`. */
export function probeKey(run: string, what: string): string {
  return `${LOFT_PREFIX}doctor-${run}-${what}`;
}

export function newProbeRun(): string {
  return randomBytes(4).toString('hex');
}

const TEXT = { contentType: 'text/plain' };

/** put, get (byte-identical), delete, then head must find nothing. */
export async function checkReadWrite(store: ObjectStore, run: string): Promise<CheckResult> {
  const key = probeKey(run, 'object');
  const body = `loft doctor ${run}\n`;
  let wrote = false;
  const result = (status: CheckStatus, detail: string, fix?: string): CheckResult => ({
    id: 'read-write',
    status,
    detail,
    ...(fix !== undefined ? { fix } : {}),
    ...(wrote ? { wrote: [key] } : {}),
  });
  let step = 'put';
  try {
    await store.putBytes(key, body, TEXT);
    wrote = true;
    step = 'get';
    const back = await store.get(key);
    if (back?.toString('utf8') !== body) {
      await store.deleteMany([key]);
      return result(
        'fail',
        `${key} read back differently than written`,
        'check the endpoint: it is not storing objects',
      );
    }
    step = 'delete';
    await store.deleteMany([key]);
    if ((await store.head(key)) !== undefined) {
      return {
        ...result('fail', `${key} is still there after delete`, 'allow deletes (on S3: s3:DeleteObject)'),
        leftBehind: [key],
      };
    }
    return result('ok', `put, get and delete of ${key} work`);
  } catch (err) {
    if (step !== 'put') await store.deleteMany([key]).catch(() => undefined);
    return result('fail', `${step} of ${key} failed: ${messageOf(err)}`, fixFor(err, PERMISSION[step]!));
  }
}

const PERMISSION: Record<string, string> = {
  put: 'allow loft to write objects (on S3: s3:PutObject)',
  get: 'allow loft to read objects (on S3: s3:GetObject)',
  delete: 'allow loft to delete objects (on S3: s3:DeleteObject)',
};

/**
 * What to do about a failed request: a target that cannot be reached or spoken to (its message
 * already says what to check) needs no advice about permissions.
 */
function fixFor(err: unknown, permission: string): string {
  const unreachable = err instanceof StorageError && UNREACHED.has(err.code);
  return unreachable ? 'fix the connection first (see the message)' : permission;
}
const UNREACHED: ReadonlySet<string> = new Set([
  'E_STORAGE_UNREACHABLE',
  'E_STORAGE_TLS',
  'E_STORAGE_NOT_CACHE',
]);

/**
 * A second create of the same key with `If-None-Match: *` must be refused (412). Servers that ignore
 * the header (s3rver, Garage 2.0) overwrite instead: loft then prunes without the lease (each sweep
 * still safe, src/prune/sweep-plan.ts), so this is a warning, not a failure.
 */
export async function checkConditionalCreate(store: ObjectStore, run: string): Promise<CheckResult> {
  const key = probeKey(run, 'if-none-match');
  let base: Pick<CheckResult, 'id' | 'wrote'> = { id: 'conditional-create' };
  if (!store.createExclusive) {
    return { id: 'conditional-create', status: 'skip', detail: 'not used for this kind of target' };
  }
  try {
    const first = await store.createExclusive(key, 'first\n', TEXT);
    base = { ...base, wrote: [key] };
    const second = await store.createExclusive(key, 'second\n', TEXT);
    await store.deleteMany([key]);
    if (first && !second)
      return { ...base, status: 'ok', detail: 'honoured: a second create of a key gets 412' };
    return {
      ...base,
      status: 'warn',
      detail: 'ignored: a second create with If-None-Match: * overwrote the key',
      fix: 'nothing needed: prune then runs without the lease; concurrent prunes of one bucket are not held apart',
    };
  } catch (err) {
    await store.deleteMany([key]).catch(() => undefined);
    return {
      ...base,
      status: 'warn',
      detail: `refused: ${messageOf(err)}`,
      fix: 'prune will run without the lease',
    };
  }
}

/** nix-cache-info is what a substituter reads first; loft writes it before its first upload. */
export async function checkCacheInfo(store: ObjectStore): Promise<CheckResult> {
  try {
    const info = await store.head('nix-cache-info');
    if (info) return { id: 'nix-cache-info', status: 'ok', detail: 'present' };
    return {
      id: 'nix-cache-info',
      status: 'skip',
      detail: 'not written yet (loft writes it before its first upload)',
    };
  } catch (err) {
    return {
      id: 'nix-cache-info',
      status: 'fail',
      detail: messageOf(err),
      fix: fixFor(err, 'allow loft to read objects (on S3: s3:GetObject)'),
    };
  }
}

export function messageOf(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.split('\n')[0] ?? m;
}
