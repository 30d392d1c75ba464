// The worker when the object store refuses it after the start (credentials revoked, bucket
// deleted): the queue is kept, one log line when access is lost and one when it returns, probes
// instead of batches with a growing backoff, and uploads resume by themselves. A real queue file,
// a hand-written uploader and probe (our own interfaces), pino's lines read from a stream.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { StorageError } from '../../../src/errors.js';
import { AccessState, decodeAccessLost, encodeAccessLost } from '../../../src/daemon/access-state.js';
import { DaemonMetrics } from '../../../src/daemon/metrics.js';
import { UploadWorker } from '../../../src/daemon/worker.js';
import { UploadQueue } from '../../../src/state/queue.js';
import { silentLogger } from '../../../src/log.js';
import { uploadReport as report } from '../../helpers/upload-report.js';

const P = (n: number) => `/nix/store/${'c'.repeat(31)}${'acdfghijkl'[n]}-p${n}`;
const denied = () =>
  new StorageError('bucket "b" at s3 refused put (AccessDenied, HTTP 403)', { code: 'E_STORAGE_AUTH' });

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(10);
  assert.ok(cond(), 'condition not reached in time');
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loft-access-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('access lost: queue kept, probes back off, one line each way, uploads resume', async () => {
  const queue = UploadQueue.open(join(dir, 'q.db'));
  const lines: Array<Record<string, unknown>> = [];
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => {
    for (const l of c.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
  });
  const logger = pino({ level: 'debug' }, sink);
  let refusing = true;
  const batches: string[][] = [];
  const probes: number[] = [];
  const access = new AccessState({
    logger,
    persist: (lost) => queue.setState('storage_access', encodeAccessLost(lost)),
  });
  const worker = new UploadWorker({
    queue,
    upload: (paths) => {
      batches.push(paths);
      return refusing ? Promise.reject(denied()) : Promise.resolve(report(paths));
    },
    probeAccess: () => {
      probes.push(Date.now());
      return refusing ? Promise.reject(denied()) : Promise.resolve();
    },
    access,
    pollMs: 20,
    accessRetry: { baseMs: 40, factor: 2, maxMs: 10_000, jitterFloor: 1 },
    logger,
  });
  const metrics = new DaemonMetrics();
  metrics.access = access;
  try {
    queue.enqueue([P(1), P(2), P(3)]);
    worker.start();
    await until(() => probes.length >= 4);
    // Access is lost: nothing left the queue, and the whole batch ran only once.
    assert.equal(queue.counts().pending, 3);
    assert.equal(batches.length, 1, 'while access is lost the worker probes instead of uploading');
    const lost = decodeAccessLost(queue.getState('storage_access'));
    assert.equal(lost?.code, 'E_STORAGE_AUTH');
    assert.match(metrics.render(queue.counts()), /^loft_storage_access_ok 0$/m);
    // The looks back off: 40, 80, 160 ms ... between probes.
    const gaps = probes.slice(1).map((t, i) => t - probes[i]!);
    assert.ok(gaps[1]! >= 75 && gaps[2]! >= 150, `gaps grow: ${gaps.join(' ')}`);
    refusing = false;
    await until(() => queue.counts().pending === 0);
    await until(() => lines.some((l) => String(l.msg).startsWith('object store accepts loft again')));
    const said = (prefix: string) => lines.filter((l) => String(l.msg).startsWith(prefix)).length;
    assert.equal(said('object store refuses loft'), 1, 'one line when access is lost');
    assert.equal(said('object store accepts loft again'), 1, 'one line when it returns');
    assert.equal(said('upload batch failed'), 0, 'no line per failed batch');
    assert.equal(queue.getState('storage_access'), '');
    const text = metrics.render(queue.counts());
    assert.match(text, /^loft_storage_access_ok 1$/m);
    assert.match(text, /^loft_storage_access_lost_total 1$/m);
  } finally {
    await worker.stop(0);
    queue.close();
  }
});

test('a transient failure of a batch is not access lost', async () => {
  const queue = UploadQueue.open(join(dir, 'q2.db'));
  const access = new AccessState({ logger: silentLogger() });
  let calls = 0;
  const worker = new UploadWorker({
    queue,
    upload: (paths) =>
      ++calls === 1
        ? Promise.reject(new StorageError('cannot reach', { code: 'E_STORAGE_UNREACHABLE', transient: true }))
        : Promise.resolve(report(paths)),
    access,
    pollMs: 20,
    batchRetry: { baseMs: 10, maxMs: 20 },
  });
  try {
    queue.enqueue([P(4)]);
    worker.start();
    await until(() => queue.counts().pending === 0);
    assert.equal(access.lostCount, 0);
  } finally {
    await worker.stop(0);
    queue.close();
  }
});
