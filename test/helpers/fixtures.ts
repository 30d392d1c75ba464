// Builds the fixture closure of test/fixtures/closure.nix with the machine's Nix. A salt per run
// gives store paths no earlier run (and no cache) has seen.
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { nixBin } from './nix-env.js';

export const CLOSURE_NIX = fileURLToPath(new URL('../fixtures/closure.nix', import.meta.url));

/**
 * Case names in closure.nix. `top` -> `mid` -> `leaf` is a closure; `top` also references itself;
 * `tree` holds every file kind and name edge case; `leaf` is a single-file output with no
 * references; `symlinkOut` is a symlink output; `large` holds one `largeFileMb` MiB random file;
 * `contentAddressed` is a builtins.toFile path and `caUser` references it.
 */
export const FIXTURE_CASES = [
  'leaf',
  'tree',
  'mid',
  'top',
  'symlinkOut',
  'large',
  'caUser',
  'contentAddressed',
] as const;
export type FixtureCase = (typeof FIXTURE_CASES)[number];

export interface FixtureOptions {
  /** Default: random per call, so each call builds new paths. */
  salt?: string;
  /** Size of the large file in MiB. Default 3 (above the 1 MiB read chunk, still fast). */
  largeFileMb?: number;
}

export function randomSalt(): string {
  return randomBytes(8).toString('hex');
}

/** Builds every fixture path and returns case name -> store path. */
export async function buildFixtureClosure(opts: FixtureOptions = {}): Promise<Record<FixtureCase, string>> {
  const salt = opts.salt ?? randomSalt();
  const largeFileMb = opts.largeFileMb ?? 3;
  if (!Number.isInteger(largeFileMb) || largeFileMb < 0)
    throw new Error('largeFileMb must be an integer >= 0');
  const fnArgs = ['--argstr', 'salt', salt, '--arg', 'largeFileMb', String(largeFileMb)];
  await nixBin(['nix-build', '--no-out-link', CLOSURE_NIX, ...fnArgs]);
  const expr = `builtins.mapAttrs (n: v: "\${v}") (import ${CLOSURE_NIX} { salt = ${JSON.stringify(salt)}; largeFileMb = ${largeFileMb}; })`;
  const { stdout } = await nixBin(['nix-instantiate', '--eval', '--strict', '--json', '-E', expr]);
  const map = JSON.parse(stdout) as Record<string, string>;
  const out = {} as Record<FixtureCase, string>;
  for (const name of FIXTURE_CASES) {
    const p = map[name];
    if (p === undefined) throw new Error(`closure.nix did not produce ${name}`);
    out[name] = p;
  }
  return out;
}

/**
 * Deletes store paths, best effort. Nix 2.8's `nix-store --delete A B` stops at the first path that
 * still has a live referrer, even when that referrer is later in the same list, so this deletes one
 * path per call and repeats until no more progress (referrers go first, then what they referenced).
 * Paths still referenced from outside the list stay for the GC; cleanup never fails a test.
 */
export async function deleteStorePaths(paths: string[]): Promise<void> {
  // Their .drv files too: a derivation references its inputs (e.g. a toFile path) and keeps them alive.
  const derivers = await Promise.all(paths.filter((p) => existsSync(p)).map(deriverOf));
  let left = [...new Set([...paths, ...derivers.filter((d): d is string => d !== undefined)])];
  while (left.length > 0) {
    const stuck: string[] = [];
    for (const p of left) {
      try {
        await nixBin(['nix-store', '--delete', '--', p]);
      } catch {
        if (existsSync(p)) stuck.push(p);
      }
    }
    if (stuck.length === left.length) return;
    left = stuck;
  }
}

async function deriverOf(path: string): Promise<string | undefined> {
  try {
    const { stdout } = await nixBin(['nix-store', '--query', '--deriver', '--', path]);
    const d = stdout.trim();
    return d.endsWith('.drv') && existsSync(d) ? d : undefined;
  } catch {
    return undefined;
  }
}
