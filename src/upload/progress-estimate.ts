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

/** NAR bytes of stored paths it takes for the learned ratio to outweigh the prior of 1. */
export const RATIO_PRIOR_BYTES = 4 * 1024 * 1024;

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
}

export interface ProgressFigures {
  /** Compressed bytes the target has acknowledged, of paths in flight and done. */
  storedBytes: number;
  /** The estimated compressed total; never below storedBytes. */
  totalBytes: number;
  /** True once every path's compressed size is known (the total is no longer an estimate). */
  exact: boolean;
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

  planned(paths: number, narBytes: number): void {
    this.plannedPaths = paths;
    this.plannedNar = narBytes;
  }

  started(path: string, narSize: number): void {
    if (this.inFlight.has(path)) return;
    this.inFlight.set(path, { narSize, read: 0, produced: 0, acked: 0, fileSize: undefined });
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

  /** The path's whole NAR is stored and checked: its compressed size is known. */
  narStored(path: string, fileSize: number): void {
    const p = this.inFlight.get(path);
    if (!p) return;
    p.fileSize = fileSize;
    p.acked = fileSize;
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
  restarted(path: string): void {
    const p = this.inFlight.get(path);
    if (!p) return;
    Object.assign(p, { read: 0, produced: 0, acked: 0, fileSize: undefined });
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

  figures(): ProgressFigures {
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
