// Deciding what to upload from a closure, with no I/O: which members are served upstream, which
// are derivations nobody asked for, and the order that keeps the cache a set of whole closures.
import { isDerivation } from '../format/store-path.js';
import type { PathInfo } from '../format/path-info.js';
import { signatureKeyName } from '../format/signing-key.js';

export type SkipReason = 'upstream-signed' | 'derivation';

export interface PlanOptions {
  /** Key names whose signature means "served by an upstream cache": such paths are not uploaded. */
  skipSignedByKeys: readonly string[];
  /** Upload .drv files reached only because they were requested (daemon events, scans). */
  uploadDerivations: boolean;
  /** Paths the user named explicitly: a named .drv counts as asked for. */
  explicit: ReadonlySet<string>;
}

export interface ClosurePlan {
  /** Members to consider for upload, references before referrers. */
  candidates: PathInfo[];
  skipped: Array<{ path: string; reason: SkipReason }>;
}

function upstreamSigned(info: PathInfo, skipKeys: ReadonlySet<string>): boolean {
  return info.signatures.some((sig) => skipKeys.has(signatureKeyName(sig)));
}

/**
 * A `.drv` enters a closure only when requested or referenced. A referenced one must be kept, or the
 * referrer's narinfo would name a path the cache lacks; a requested one is dropped unless derivations
 * are wanted or the user named it.
 */
export function planClosure(
  infos: readonly PathInfo[],
  requested: readonly string[],
  options: PlanOptions,
): ClosurePlan {
  const skipKeys = new Set(options.skipSignedByKeys);
  const referenced = new Set<string>();
  for (const info of infos) {
    for (const ref of info.references) if (ref !== info.path) referenced.add(ref);
  }
  const requestedSet = new Set(requested);
  const kept: PathInfo[] = [];
  const skipped: ClosurePlan['skipped'] = [];
  for (const info of infos) {
    if (upstreamSigned(info, skipKeys)) {
      skipped.push({ path: info.path, reason: 'upstream-signed' });
    } else if (
      isDerivation(info.path) &&
      !options.uploadDerivations &&
      !options.explicit.has(info.path) &&
      requestedSet.has(info.path) &&
      !referenced.has(info.path)
    ) {
      skipped.push({ path: info.path, reason: 'derivation' });
    } else {
      kept.push(info);
    }
  }
  return { candidates: topologicalOrder(kept), skipped };
}

/**
 * References before referrers (self-references ignored). Store closures are acyclic apart from
 * self-references, but a cycle would be a corrupt input: it is broken deterministically rather than
 * looping, and the narinfo wait in the uploader still keeps the commit order honest.
 */
export function topologicalOrder(infos: readonly PathInfo[]): PathInfo[] {
  const byPath = new Map(infos.map((i) => [i.path, i]));
  const state = new Map<string, 'visiting' | 'done'>();
  const out: PathInfo[] = [];
  const sorted = [...infos].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const root of sorted) {
    if (state.has(root.path)) continue;
    // Iterative DFS: closures can be tens of thousands deep in chains.
    const stack: Array<{ info: PathInfo; next: number }> = [{ info: root, next: 0 }];
    state.set(root.path, 'visiting');
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const refs = top.info.references;
      if (top.next < refs.length) {
        const ref = refs[top.next++]!;
        const child = byPath.get(ref);
        if (child && ref !== top.info.path && !state.has(ref)) {
          state.set(ref, 'visiting');
          stack.push({ info: child, next: 0 });
        }
      } else {
        state.set(top.info.path, 'done');
        out.push(top.info);
        stack.pop();
      }
    }
  }
  return out;
}
