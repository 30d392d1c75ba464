// One-off commands keep V8's compiled code of loft's modules (and the S3 SDK's) in a directory beside
// their local state, so the next run loads it instead of compiling the same sources again.
//
// Why: a one-off upload spends its first few hundred milliseconds loading modules before its first
// request (docs/benchmarks.md, the wide-area start). Most of the AWS SDK's load is compiling its
// CommonJS files: measured on this project's machine, importing @aws-sdk/client-s3 went from about
// 120 to 75 ms with the cache. Over a wide-area link that is time before the first NAR leaves.
//
// Where: Node's own default (a shared folder under the system's temporary directory) could be
// created first by another user, whose cached code a root loft would then run. The state directory
// is the user's own, so the cache is used only when this process owns that directory. The daemon
// does not use it: it starts once, and code deserialised from a cache stays on its idle heap.
// NODE_DISABLE_COMPILE_CACHE=1 turns it off (Node reads it); a Node without
// module.enableCompileCache (before 22.1) or a cache that cannot be written only loses the gain.
import * as nodeModule from 'node:module';
import { statSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const COMPILE_CACHE_DIR = 'compile-cache';

export interface CompileCacheDeps {
  /** module.enableCompileCache: its status is 1 (ENABLED) or 2 (ALREADY_ENABLED) when it is on. */
  enable: ((dir: string) => { status: number }) | undefined;
  ownerOf: (dir: string) => number | undefined;
  uid: number | undefined;
}

const processDeps = (): CompileCacheDeps => ({
  enable: (nodeModule as { enableCompileCache?: (dir: string) => { status: number } }).enableCompileCache,
  ownerOf: (dir) => {
    try {
      return statSync(dir).uid;
    } catch {
      return undefined;
    }
  },
  uid: process.getuid?.(),
});

/**
 * Turns on Node's compile cache in `<dir of localCachePath>/compile-cache` when this process owns
 * that directory; returns the cache directory, or undefined when it stays off.
 */
export function cacheCompiledCode(localCachePath: string, deps = processDeps()): string | undefined {
  const stateDir = dirname(localCachePath);
  if (deps.enable === undefined || deps.uid === undefined) return undefined;
  if (deps.ownerOf(stateDir) !== deps.uid) return undefined;
  const dir = join(stateDir, COMPILE_CACHE_DIR);
  try {
    const { status } = deps.enable(dir);
    return status === 1 || status === 2 ? dir : undefined;
  } catch {
    return undefined;
  }
}
