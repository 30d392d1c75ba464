// The adaptive limit on S3 requests in flight (src/storage/request-limiter.ts): unlimited until a
// throttled answer, halved once per burst of throttling, one more place per round of successes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestLimiter, type LimiterTicket } from '../../../src/storage/request-limiter.js';

async function takeAll(limiter: RequestLimiter, n: number): Promise<LimiterTicket[]> {
  return Promise.all(Array.from({ length: n }, () => limiter.acquire()));
}

test('unlimited until the first throttled answer, then half of what was in flight', async () => {
  const limiter = new RequestLimiter();
  const tickets = await takeAll(limiter, 16);
  assert.equal(limiter.limit, undefined);
  limiter.release(tickets[0]!, 'throttled');
  assert.equal(limiter.limit, 8);
  assert.equal(limiter.inFlight, 15);
});

test('one burst of throttled answers is one decrease, not a collapse to 1', async () => {
  const limiter = new RequestLimiter();
  const tickets = await takeAll(limiter, 16);
  for (const t of tickets) limiter.release(t, 'throttled');
  assert.equal(limiter.limit, 8, 'requests sent before the decrease do not decrease it again');
  assert.equal(limiter.throttles, 16);
  // A request sent after the decrease that is throttled again halves it again.
  const again = await limiter.acquire();
  limiter.release(again, 'throttled');
  assert.equal(limiter.limit, 4);
});

test('never below 1', async () => {
  const limiter = new RequestLimiter();
  for (let i = 0; i < 10; i++) limiter.release(await limiter.acquire(), 'throttled');
  assert.equal(limiter.limit, 1);
});

test('above the limit, requests wait and are let in first come, first served', async () => {
  const limiter = new RequestLimiter();
  const first = await takeAll(limiter, 4);
  limiter.release(first[0]!, 'throttled'); // limit 2, 3 in flight
  const order: number[] = [];
  const waiting = [1, 2, 3].map((i) => limiter.acquire().then((t) => (order.push(i), t)));
  await Promise.resolve();
  assert.deepEqual(order, []);
  limiter.release(first[1]!, 'other'); // 2 in flight: still none may start
  limiter.release(first[2]!, 'other'); // 1 in flight: one may start
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [1]);
  limiter.release(first[3]!, 'other');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [1, 2]);
  for (const t of await Promise.all(waiting.slice(0, 2))) limiter.release(t, 'ok');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [1, 2, 3]);
});

test('additive increase: one more place after each round of `limit` successes, lifted past max', async () => {
  let now = 0;
  const limiter = new RequestLimiter({ max: 6, now: () => now });
  const first = await takeAll(limiter, 8);
  limiter.release(first[0]!, 'throttled');
  for (const t of first.slice(1)) limiter.release(t, 'other');
  assert.equal(limiter.limit, 4);
  const seen: Array<number | undefined> = [];
  for (let i = 0; i < 4 + 5 + 6; i++) {
    now += 1000; // a second per success: growth is never held back by time here
    limiter.release(await limiter.acquire(), 'ok');
    seen.push(limiter.limit);
  }
  // 4 successes -> 5, 5 more -> 6, 6 more -> 7 > max: unlimited again.
  assert.equal(seen[3], 5);
  assert.equal(seen[8], 6);
  assert.equal(seen[14], undefined);
});

test('at most one increase per second, however fast the successes come', async () => {
  let now = 0;
  const limiter = new RequestLimiter({ now: () => now });
  const first = await takeAll(limiter, 8);
  limiter.release(first[0]!, 'throttled'); // limit 4 at t = 0
  for (const t of first.slice(1)) limiter.release(t, 'other');
  for (let i = 0; i < 40; i++) limiter.release(await limiter.acquire(), 'ok');
  assert.equal(limiter.limit, 4, 'no growth within the second of the decrease');
  now = 1000;
  for (let i = 0; i < 40; i++) limiter.release(await limiter.acquire(), 'ok');
  assert.equal(limiter.limit, 5, 'one step once the second has passed');
});

test('a throttled answer starts the count of successes again', async () => {
  let now = 0;
  const limiter = new RequestLimiter({ now: () => (now += 1000) });
  const first = await takeAll(limiter, 4);
  limiter.release(first[0]!, 'throttled'); // limit 2
  for (const t of first.slice(1)) limiter.release(t, 'other');
  limiter.release(await limiter.acquire(), 'ok');
  const t = await limiter.acquire();
  limiter.release(t, 'throttled'); // limit 1
  limiter.release(await limiter.acquire(), 'ok');
  assert.equal(limiter.limit, 2, 'one success at limit 1 is a whole round');
});

test('not adaptive: never limits, but still counts throttled answers', async () => {
  const limiter = new RequestLimiter({ adaptive: false });
  for (const t of await takeAll(limiter, 8)) limiter.release(t, 'throttled');
  assert.equal(limiter.limit, undefined);
  assert.equal(limiter.throttles, 8);
});

test('a waiting request whose signal aborts leaves the queue with an AbortError', async () => {
  const limiter = new RequestLimiter();
  const held = await takeAll(limiter, 2);
  limiter.release(held[0]!, 'throttled'); // limit 1, 1 in flight
  const ac = new AbortController();
  const waiting = limiter.acquire(ac.signal);
  ac.abort();
  await assert.rejects(waiting, { name: 'AbortError' });
  limiter.release(held[1]!, 'ok');
  assert.equal(limiter.inFlight, 0, 'the aborted waiter took no place');
});
