// How far a closure upload has got, counted in compressed bytes the target has acknowledged, out of
// an estimate of the compressed total. Pure bookkeeping (no clock, no I/O) so it can be tested
// exactly; the display (cli/terminal-progress.ts) reads snapshots of it.
//
// Why acknowledged bytes: on a slow link the reader runs ahead of the network by everything the
// store buffers (parts in flight, a whole NAR waiting for its PUT), so counting NAR bytes read put
// the line up to 48 points ahead of the time passed on a 20 Mbit/s link.
//
// Why an estimate: the compressed size of a path is known only once its NAR is stored (its
// FileSize). Until then each path counts at its NAR size times a compression ratio learned from
// the paths whose NAR is stored, starting from 1 (no compression) and pulled towards the observed
// ratio as stored bytes accumulate. A path still being compressed counts at least what it has
// produced so far plus the rest of its NAR at that ratio. Overestimating only makes the line lag;
// underestimating makes it run ahead, so the prior errs on the large side.
//
// Why paths weigh too: a small path costs requests more than bytes (its NAR's PUT, then its
// narinfo's, each a round trip), so a closure of hundreds of small paths spends much of its time
// on them after the large NARs' bytes are through: counting bytes alone read `[223/404] 99%` with
// 180 paths to go. Each path therefore also weighs the bytes the link could carry meanwhile: the
// peak rate seen times the time a path costs, learned from how long small NARs take to store
// (two requests each, spread over the upload slots).

/** NAR bytes of stored paths it takes for the learned ratio to outweigh the prior of 1. */
export const RATIO_PRIOR_BYTES = 4 * 1024 * 1024;
/** NARs up to this size are small: the time they take to store is mostly requests. */
export const SMALL_NAR_BYTES = 1024 * 1024;
/** How many of the latest small NARs' store times the per-path cost is learned from. */
const LATENCY_SAMPLES = 64;

interface InFlight {
  narSize: number;
  /** NAR bytes read. */
  read: number;
  /** Compressed bytes produced. */
  produced: number;
  /** Compressed bytes the target acknowledged. */
  acked: number;
  /** The compressed size, once the whole NAR is stored. */
  fileSize: number | undefined;
  /** When its upload (last) started, in ms. */
  startedAt: number;
}

export interface ProgressFigures {
  /** Compressed bytes the target has acknowledged, of paths in flight and done. */
  storedBytes: number;
  /** The estimated compressed total; never below storedBytes. */
  totalBytes: number;
  /** True once every path's compressed size is known (the total is no longer an estimate). */
  exact: boolean;
  /** The share of the work done, 0 to 1: bytes stored and paths committed, each path weighed too. */
  fraction: number;
  /** Seconds a path costs beyond its bytes (0 until small NARs have been stored). */
  perPathSeconds: number;
}

export class ProgressEstimate {
  private plannedPaths = 0;
  private plannedNar = 0;
  /** NAR bytes of the paths that have started (in flight or done). */
  private startedNar = 0;
  private readonly inFlight = new Map<string, InFlight>();
  /** Paths committed: their compressed and NAR sizes. */
  private doneFile = 0;
  private doneNar = 0;
  private donePaths = 0;
  private slots = 1;
  /** ms from start to stored of the latest small NARs, and their compressed bytes. */
  private readonly latencies: Array<{ ms: number; bytes: number }> = [];

  /** @param slots NAR uploads at once (upload threads), over which per-path costs spread */
  planned(paths: number, narBytes: number, slots = 1): void {
    this.plannedPaths = paths;
    this.plannedNar = narBytes;
    this.slots = Math.max(1, slots);
  }

  /** @param at now, in ms */
  started(path: string, narSize: number, at = 0): void {
    if (this.inFlight.has(path)) return;
    const p = { narSize, read: 0, produced: 0, acked: 0, fileSize: undefined, startedAt: at };
    this.inFlight.set(path, p);
    this.startedNar += narSize;
  }

  read(path: string, n: number): void {
    const p = this.inFlight.get(path);
    if (p) p.read += n;
  }

  produced(path: string, n: number): void {
    const p = this.inFlight.get(path);
    if (p) p.produced += n;
  }

  acknowledged(path: string, n: number): void {
    const p = this.inFlight.get(path);
    if (p) p.acked += n;
  }

  /** The path's whole NAR is stored and checked: its compressed size is known. `at`: now, in ms. */
  narStored(path: string, fileSize: number, at?: number): void {
    const p = this.inFlight.get(path);
    if (!p) return;
    p.fileSize = fileSize;
    p.acked = fileSize;
    if (at === undefined || p.narSize > SMALL_NAR_BYTES) return;
    this.latencies.push({ ms: Math.max(0, at - p.startedAt), bytes: fileSize });
    if (this.latencies.length > LATENCY_SAMPLES) this.latencies.shift();
  }

  /** The path's narinfo is written: it leaves the in-flight set. */
  committed(path: string, narSize: number, fileSize: number): void {
    const p = this.inFlight.get(path);
    if (p) this.inFlight.delete(path);
    else this.startedNar += narSize;
    this.doneFile += fileSize;
    this.doneNar += narSize;
    this.donePaths++;
  }

  /** A new attempt reads, compresses and stores the path from the start. */
  restarted(path: string, at = 0): void {
    const p = this.inFlight.get(path);
    if (!p) return;
    Object.assign(p, { read: 0, produced: 0, acked: 0, fileSize: undefined, startedAt: at });
  }

  /** The path will not be stored: its bytes leave both the count and the total. */
  failed(path: string): void {
    const p = this.inFlight.get(path);
    if (!p) return;
    this.inFlight.delete(path);
    this.startedNar -= p.narSize;
    this.plannedNar -= p.narSize;
  }

  /** Compressed bytes per NAR byte, from the paths whose NAR is stored, leaning on 1 until enough are. */
  ratio(): number {
    let file = this.doneFile;
    let nar = this.doneNar;
    for (const p of this.inFlight.values()) {
      if (p.fileSize === undefined) continue;
      file += p.fileSize;
      nar += p.narSize;
    }
    return (file + RATIO_PRIOR_BYTES) / (nar + RATIO_PRIOR_BYTES);
  }

  /**
   * Seconds one path costs beyond its bytes: its NAR's request and its narinfo's, each about as long
   * as the quickest small NAR took to store less its bytes' time on the link (counted already),
   * spread over the upload slots. The quickest, not the median: a small NAR sent while large ones
   * fill the link waits behind their bytes, and the requests that matter are those of the tail,
   * when the link is idle.
   * @param linkBytesPerSec the link's rate, when known
   */
  perPathSeconds(linkBytesPerSec = 0): number {
    if (this.latencies.length === 0) return 0;
    const own = (bytes: number) => (linkBytesPerSec > 0 ? (1000 * bytes) / linkBytesPerSec : 0);
    const quickest = Math.min(...this.latencies.map((l) => Math.max(0, l.ms - own(l.bytes))));
    return (2 * quickest) / this.slots / 1000;
  }

  /** @param linkBytesPerSec the fastest the target has acknowledged bytes in this run, if known */
  figures(linkBytesPerSec = 0): ProgressFigures {
    const { storedBytes, totalBytes, exact } = this.bytes();
    const perPathSeconds = this.perPathSeconds(linkBytesPerSec);
    const weight = linkBytesPerSec * perPathSeconds;
    const all = totalBytes + this.plannedPaths * weight;
    const fraction = all > 0 ? Math.min(1, (storedBytes + this.donePaths * weight) / all) : 0;
    return { storedBytes, totalBytes, exact, fraction, perPathSeconds };
  }

  private bytes(): Pick<ProgressFigures, 'storedBytes' | 'totalBytes' | 'exact'> {
    const r = this.ratio();
    let stored = this.doneFile;
    let total = this.doneFile;
    let exact = this.inFlight.size + this.donePaths >= this.plannedPaths;
    for (const p of this.inFlight.values()) {
      stored += Math.min(p.acked, p.fileSize ?? p.acked);
      if (p.fileSize !== undefined) {
        total += p.fileSize;
        continue;
      }
      exact = false;
      // What it has produced, plus the rest of its NAR at the ratio; never less than the ratio's
      // guess for the whole path (a compressor holds up to a frame before its first output).
      const rest = p.produced + Math.max(0, p.narSize - p.read) * r;
      total += Math.max(rest, p.narSize * r, p.acked);
    }
    total += Math.max(0, this.plannedNar - this.startedNar) * r;
    return { storedBytes: stored, totalBytes: Math.max(Math.round(total), stored), exact };
  }
}
