// A transfer rate over the last few seconds, from samples of a running byte count. The rate over
// the whole run would hide a stall and recover slowly from a slow start; a short window follows what
// the upload does now, which is what an ETA should extrapolate.

export class RateWindow {
  readonly #samples: Array<{ at: number; bytes: number }> = [];

  /** @param windowMs how far back the rate looks */
  constructor(private readonly windowMs = 5000) {}

  /** Records the running count `bytes` at time `at` (ms). */
  add(at: number, bytes: number): void {
    this.#samples.push({ at, bytes });
    // Keep one sample older than the window, so the rate always spans the whole window.
    while (this.#samples.length > 2 && this.#samples[1]!.at <= at - this.windowMs) this.#samples.shift();
  }

  /** Bytes per second over the window; undefined until samples span half a second. */
  rate(): number | undefined {
    const first = this.#samples[0];
    const last = this.#samples[this.#samples.length - 1];
    if (!first || !last || last.at - first.at < 500) return undefined;
    return Math.max(0, ((last.bytes - first.bytes) * 1000) / (last.at - first.at));
  }
}
