// The reference graph of a bucket's paths for the prune policy: references limited to paths in
// the snapshot (a reference outside it is served elsewhere, e.g. upstream), walked both ways.

/** What the graph needs of a path; the policy's P carries more. */
export interface GraphPath {
  hashPart: string;
  /** Hash parts of the References. */
  references: readonly string[];
}

/** The paths by hash part, with references limited to paths in the snapshot. */
export class PathGraph<P extends GraphPath = GraphPath> {
  private readonly byHash = new Map<string, P>();
  private readonly referrers = new Map<string, string[]>();

  constructor(paths: readonly P[]) {
    for (const p of paths) this.byHash.set(p.hashPart, p);
    for (const p of paths) {
      for (const r of new Set(p.references)) {
        if (r === p.hashPart || !this.byHash.has(r)) continue;
        const list = this.referrers.get(r);
        if (list) list.push(p.hashPart);
        else this.referrers.set(r, [p.hashPart]);
      }
    }
  }

  get(hashPart: string): P {
    const p = this.byHash.get(hashPart);
    if (!p) throw new Error(`prune graph has no path ${hashPart}`);
    return p;
  }

  /** Hash parts reachable from `from` through References (including `from`). */
  reachable(from: readonly P[]): Set<string> {
    return this.walk(from, (h) => this.get(h).references.filter((r) => this.byHash.has(r)));
  }

  /** Hash parts of `from` and of every path that references one of them, transitively. */
  referrersClosure(from: readonly P[]): Set<string> {
    return this.walk(from, (h) => this.referrers.get(h) ?? []);
  }

  /**
   * `hashParts` ordered so that every path comes before the paths it references (within the list).
   * Deleting narinfos in this order means a delete cut short at any key (a crash, a DeleteObjects
   * batch the server only half applied) never leaves a narinfo whose reference's narinfo is gone.
   * A cycle (only possible in a forged bucket) is broken at an arbitrary point.
   */
  referrersFirst(hashParts: readonly string[]): string[] {
    const wanted = new Set(hashParts);
    const visited = new Set<string>();
    const dependenciesFirst: string[] = [];
    for (const start of hashParts) {
      if (visited.has(start)) continue;
      // Iterative post-order walk: a deep reference chain must not overflow the call stack.
      const stack: Array<{ h: string; refs: string[]; i: number }> = [];
      const enter = (h: string) => {
        visited.add(h);
        const refs = this.get(h).references.filter((r) => r !== h && wanted.has(r));
        stack.push({ h, refs, i: 0 });
      };
      enter(start);
      while (stack.length > 0) {
        const top = stack[stack.length - 1]!;
        const next = top.refs[top.i++];
        if (next === undefined) {
          dependenciesFirst.push(top.h);
          stack.pop();
        } else if (!visited.has(next)) {
          enter(next);
        }
      }
    }
    return dependenciesFirst.reverse();
  }

  private walk(from: readonly P[], next: (h: string) => readonly string[]): Set<string> {
    const seen = new Set<string>();
    const stack = from.map((p) => p.hashPart);
    for (let h = stack.pop(); h !== undefined; h = stack.pop()) {
      if (seen.has(h)) continue;
      seen.add(h);
      for (const n of next(h)) if (!seen.has(n)) stack.push(n);
    }
    return seen;
  }
}
