// One prune at a time across hosts, where the store allows it: a lease object `.loft/lease`
// created with `If-None-Match: *` (a second create of the same key fails with 412). AWS S3 (since
// 2024-08), R2, recent MinIO and Ceph honour the header; Garage 2.0 and s3rver ignore it silently
// and overwrite, so every run first probes: it creates a fresh key twice, and only a refused second
// create proves the header works. The lease only saves repeated work: mark, wait, sweep keeps the
// bucket safe with or without it (src/prune/sweep-plan.ts), so a failed probe or any error here
// means "no lease", never a failed prune.
import { randomBytes } from 'node:crypto';
import { LOFT_PREFIX } from '../format/loft-state.js';
import type { Logger } from '../log.js';
import type { ObjectStore } from '../storage/object-store.js';

export const LEASE_KEY = `${LOFT_PREFIX}lease`;
/** A lease older than this (by the server's clock) was left by a prune that died: taken over. */
export const LEASE_TTL_MS = 2 * 3_600_000;

export type Lease =
  | { kind: 'held'; release: () => Promise<void> }
  | { kind: 'none'; reason: string }
  | { kind: 'busy'; holder: string };

const JSON_TYPE = { contentType: 'application/json' };

/** `now` is the server's time (ms), to judge a lease's age by its LastModified. */
export async function takeLease(
  store: ObjectStore,
  host: string,
  now: number,
  logger: Logger,
): Promise<Lease> {
  const create = store.createExclusive?.bind(store);
  if (!create) return { kind: 'none', reason: 'the store has no conditional writes' };
  try {
    const probe = `${LOFT_PREFIX}lease-probe-${randomBytes(6).toString('hex')}`;
    const first = await create(probe, 'probe\n', JSON_TYPE);
    const second = await create(probe, 'probe\n', JSON_TYPE);
    await store.deleteMany([probe]);
    if (!first || second) return { kind: 'none', reason: 'the server ignores If-None-Match' };
    const body = `${JSON.stringify({ v: 1, host })}\n`;
    if (await create(LEASE_KEY, body, JSON_TYPE)) return held(store);
    const info = await store.head(LEASE_KEY);
    if (info && now - info.lastModified.getTime() > LEASE_TTL_MS) {
      logger.warn({ since: info.lastModified }, 'taking over a prune lease left by a prune that died');
      await store.deleteMany([LEASE_KEY]);
      if (await create(LEASE_KEY, body, JSON_TYPE)) return held(store);
    }
    return { kind: 'busy', holder: await holderOf(store) };
  } catch (err) {
    logger.warn({ err }, 'could not take the prune lease; pruning without one');
    return { kind: 'none', reason: 'the lease could not be taken' };
  }
}

function held(store: ObjectStore): Lease {
  return {
    kind: 'held',
    release: () => store.deleteMany([LEASE_KEY]).catch(() => undefined),
  };
}

async function holderOf(store: ObjectStore): Promise<string> {
  const body = await store.get(LEASE_KEY).catch(() => undefined);
  try {
    const host = (JSON.parse(body?.toString('utf8') ?? '{}') as { host?: unknown }).host;
    return typeof host === 'string' ? host : 'another host';
  } catch {
    return 'another host';
  }
}
