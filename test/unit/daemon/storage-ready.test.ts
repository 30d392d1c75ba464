import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { StorageError } from '../../../src/errors.js';
import { createLogger } from '../../../src/log.js';
import { waitForStorage } from '../../../src/daemon/storage-ready.js';

/** A real pino logger writing JSON lines into an array (pino's test-sink pattern). */
function sink(debug = false) {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, logger: createLogger({ destination, debug }) };
}

const fast = { baseMs: 1, maxMs: 2 };
const unreachable = () =>
  new StorageError('cannot reach x', { code: 'E_STORAGE_UNREACHABLE', transient: true });

test('transient failures are waited out, one log line each without a stack', async () => {
  const { lines, logger } = sink();
  let calls = 0;
  const probe = () => (++calls < 3 ? Promise.reject(unreachable()) : Promise.resolve());
  assert.equal(await waitForStorage(probe, logger, new AbortController().signal, fast), true);
  assert.equal(calls, 3);
  const waits = lines.filter((l) => l.includes('not reachable yet'));
  assert.equal(waits.length, 2);
  for (const l of waits) {
    assert.doesNotMatch(l, /\\n\s+at |"stack"/);
    assert.match(l, /"code":"E_STORAGE_UNREACHABLE"/);
  }
});

test('a definite refusal is thrown at once', async () => {
  const { logger } = sink();
  let calls = 0;
  const refused = new StorageError('no bucket', { code: 'E_STORAGE_NO_BUCKET' });
  const probe = () => (calls++, Promise.reject(refused));
  await assert.rejects(waitForStorage(probe, logger, new AbortController().signal, fast), /no bucket/);
  assert.equal(calls, 1);
});

test('a stop request while waiting resolves false', async () => {
  const { logger } = sink();
  const stop = new AbortController();
  const waiting = waitForStorage(() => Promise.reject(unreachable()), logger, stop.signal, {
    baseMs: 60_000,
    maxMs: 60_000,
  });
  setTimeout(() => stop.abort(), 20);
  assert.equal(await waiting, false);
});

test('--debug keeps the stack in error log fields', () => {
  const quiet = sink();
  const loud = sink(true);
  quiet.logger.error({ err: unreachable() }, 'x');
  loud.logger.error({ err: unreachable() }, 'x');
  assert.doesNotMatch(quiet.lines.join('\n'), /"stack"/);
  assert.match(loud.lines.join('\n'), /"stack":"StorageError: cannot reach x\\n\s+at /);
});
