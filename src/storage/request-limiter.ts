// How many S3 requests one store has in flight, adapted to what the server tolerates: additive
// increase, multiplicative decrease (AIMD), as TCP does with its congestion window.
//
// A server that throttles (503 SlowDown, 429) is saying "fewer requests at once". Retrying each
// throttled request later (src/storage/retry.ts) spreads the retries, but if the same number of
// requests stays in flight the next ones are throttled too. niks3 adapts its request RATE (starts
// unlimited, multiplies the rate by 0.7 on a throttle, by 1.1 after 10 successes); loft limits
// CONCURRENCY instead, because its load is bounded by uploads in flight, not by a clock:
//  - unlimited until the first throttled answer (a server that never throttles never pays);
//  - a throttled answer halves the limit (from the number in flight, the first time), at least 1;
//    answers to requests sent before the last decrease do not decrease it again, so one burst of
//    503s is one halving, not a collapse to 1;
//  - every `limit` successes in a row raise it by one (one step per round of requests), but at
//    most one step per `growEveryMs` (1 s): a round lasts one round trip, tens of milliseconds,
//    while a throttled request waits seconds (Retry-After), so growing per round would bring the
//    next throttling long before the last one's retries came back (measured: as many 503s as with
//    no limit at all). Past `max` it is unlimited again.
// Pure bookkeeping and a FIFO of waiters; no timers, no SDK imports.

export type RequestOutcome = 'ok' | 'throttled' | 'other';

/** A request's hold on a place in flight; given back exactly once with its outcome. */
export interface LimiterTicket {
  readonly generation: number;
}

export interface RequestLimiterOptions {
  /** Above this the limit is lifted again (default 256). */
  max?: number;
  /** false: never limits (the fixed concurrency of the callers); for measurements. */
  adaptive?: boolean;
  /** The least time between two increases (default 1000 ms). */
  growEveryMs?: number;
  now?: () => number;
  /** Told whenever the limit changes (undefined: unlimited). */
  onChange?: (limit: number | undefined, inFlight: number) => void;
}

interface Waiter {
  grant: (ticket: LimiterTicket) => void;
}

export class RequestLimiter {
  #limit = Infinity;
  #inFlight = 0;
  #successes = 0;
  /** Raised at each decrease; a ticket from an older generation cannot decrease again. */
  #generation = 0;
  #throttles = 0;
  #changedAt = -Infinity;
  readonly #waiting: Waiter[] = [];
  readonly #max: number;
  readonly #adaptive: boolean;

  constructor(private readonly options: RequestLimiterOptions = {}) {
    this.#max = options.max ?? 256;
    this.#adaptive = options.adaptive ?? true;
  }

  /** The current limit; undefined while unlimited. */
  get limit(): number | undefined {
    return Number.isFinite(this.#limit) ? this.#limit : undefined;
  }
  get inFlight(): number {
    return this.#inFlight;
  }
  /** Throttled answers seen. */
  get throttles(): number {
    return this.#throttles;
  }

  /** Waits for a place in flight (first come, first served); rejects when `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<LimiterTicket> {
    if (this.#inFlight < this.#limit && this.#waiting.length === 0) return Promise.resolve(this.#take());
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.#waiting.indexOf(waiter);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(abortError(signal));
      };
      const waiter: Waiter = {
        grant: (ticket) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(ticket);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  /** Gives a place back and learns from the answer. */
  release(ticket: LimiterTicket, outcome: RequestOutcome): void {
    const inFlightBefore = this.#inFlight;
    this.#inFlight--;
    if (outcome === 'throttled') this.#throttled(ticket, inFlightBefore);
    else if (outcome === 'ok') this.#succeeded();
    this.#pump();
  }

  #take(): LimiterTicket {
    this.#inFlight++;
    return { generation: this.#generation };
  }

  #throttled(ticket: LimiterTicket, inFlight: number): void {
    this.#throttles++;
    this.#successes = 0;
    if (!this.#adaptive || ticket.generation !== this.#generation) return;
    this.#generation++;
    const from = Number.isFinite(this.#limit) ? this.#limit : inFlight;
    this.#set(Math.max(1, Math.floor(from / 2)));
  }

  #succeeded(): void {
    if (!Number.isFinite(this.#limit)) return;
    if (++this.#successes < this.#limit) return;
    if (this.#clock() - this.#changedAt < (this.options.growEveryMs ?? 1000)) return;
    this.#successes = 0;
    this.#set(this.#limit + 1 > this.#max ? Infinity : this.#limit + 1);
  }

  #set(limit: number): void {
    this.#changedAt = this.#clock();
    if (limit === this.#limit) return;
    this.#limit = limit;
    this.options.onChange?.(this.limit, this.#inFlight);
  }

  #clock(): number {
    return (this.options.now ?? Date.now)();
  }

  #pump(): void {
    while (this.#inFlight < this.#limit && this.#waiting.length > 0)
      this.#waiting.shift()!.grant(this.#take());
  }
}

function abortError(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  return Object.assign(new Error('request cancelled while waiting for a place in flight'), {
    name: 'AbortError',
  });
}
