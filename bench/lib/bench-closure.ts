// Builds, measures and deletes the synthetic closure of bench/fixtures/upload-closure.nix with the
// machine's Nix under a private configuration (test/helpers/nix-env.ts), never touching /etc/nix.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { deleteStorePaths } from '../../test/helpers/fixtures.js';
import { nixBin, nixEnv } from '../../test/helpers/nix-env.js';

export const UPLOAD_CLOSURE_NIX = fileURLToPath(new URL('../fixtures/upload-closure.nix', import.meta.url));

export interface BuiltClosure {
  root: string;
  /** Every member, references first (as `nix-store -qR` prints them). */
  paths: string[];
  narSizes: Map<string, number>;
  /** NarHash of every member as Nix prints it (`sha256:...`). */
  narHashes: Map<string, string>;
  narTotal: number;
  regularFiles: number;
  buildSeconds: number;
}

/** Builds one attribute of the fixture (`root` or `big`) and returns its output path. */
export async function buildAttr(
  attr: 'root' | 'big' | 'bigMixed',
  salt: string,
  extraArgs: string[] = [],
): Promise<string> {
  const { stdout } = await nixBin([
    'nix-build',
    '--no-out-link',
    '--max-jobs',
    'auto',
    UPLOAD_CLOSURE_NIX,
    '-A',
    attr,
    '--argstr',
    'salt',
    salt,
    ...extraArgs,
  ]);
  return stdout.trim();
}

export async function buildBenchClosure(salt: string, extraArgs: string[] = []): Promise<BuiltClosure> {
  const start = process.hrtime.bigint();
  const root = await buildAttr('root', salt, extraArgs);
  const buildSeconds = Number(process.hrtime.bigint() - start) / 1e9;
  const infos = await closurePathInfo(root);
  const narSizes = new Map(infos.map((i) => [i.path, i.narSize]));
  const narHashes = new Map(infos.map((i) => [i.path, i.narHash]));
  const paths = (await nixBin(['nix-store', '--query', '--requisites', '--', root])).stdout
    .split('\n')
    .filter((l) => l !== '');
  const narTotal = [...narSizes.values()].reduce((a, b) => a + b, 0);
  return {
    root,
    paths,
    narSizes,
    narHashes,
    narTotal,
    regularFiles: await countRegularFiles(paths),
    buildSeconds,
  };
}

/** Every member as `nix path-info --json --recursive` describes it (Nix 2.8 prints an array). */
async function closurePathInfo(
  root: string,
): Promise<Array<{ path: string; narSize: number; narHash: string }>> {
  const { stdout } = await nixBin(['nix', 'path-info', '--json', '--recursive', '--', root]);
  const parsed = JSON.parse(stdout) as unknown;
  type Info = { narSize: number; narHash: string };
  return Array.isArray(parsed)
    ? (parsed as Array<Info & { path: string }>)
    : Object.entries(parsed as Record<string, Info>).map(([path, v]) => ({ path, ...v }));
}

async function countRegularFiles(paths: string[]): Promise<number> {
  const { stdout } = await nixBin(['find', ...paths, '-type', 'f', '-printf', '.']);
  return stdout.length;
}

/** Reads every file once so later runs all start with a warm page cache. */
export async function warmPageCache(paths: string[]): Promise<void> {
  const devNull = openSync('/dev/null', 'w');
  try {
    const child = spawn('find', [...paths, '-type', 'f', '-exec', 'cat', '{}', '+'], {
      stdio: ['ignore', devNull, 'inherit'],
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    if (code !== 0) throw new Error(`reading the closure to warm the page cache failed (exit ${code})`);
  } finally {
    closeSync(devNull);
  }
}

/**
 * Deletes store paths and their .drv files. One `nix-store --delete` of the whole set works when
 * every referrer is in the set (Nix 2.8 checks liveness against the set); whatever is left (e.g. a
 * path someone else started to use) goes through the one-by-one helper, best effort.
 */
export async function deleteWithDerivers(paths: string[]): Promise<string[]> {
  const present = paths.filter((p) => existsSync(p));
  if (present.length === 0) return [];
  // One line per path, "unknown-deriver" when Nix has none.
  const { stdout } = await nixBin(['nix-store', '--query', '--deriver', '--', ...present]).catch(() => ({
    stdout: '',
  }));
  const derivers = stdout.split('\n').filter((d) => d.endsWith('.drv') && existsSync(d));
  const all = [...new Set([...present, ...derivers])];
  await nixBin(['nix-store', '--delete', '--', ...all]).catch(() => undefined);
  const left = all.filter((p) => existsSync(p));
  if (left.length > 0) await deleteStorePaths(left);
  return all.filter((p) => existsSync(p));
}

export { nixEnv };
