// The machine's Nix, run with a private configuration so tests never touch /etc/nix and never wait
// on the network: `substituters =` stops Nix 2.8 from retrying DNS for the default cache (about 4 s a
// call), and zero narinfo TTLs plus a fresh XDG_CACHE_HOME stop it from remembering 404s and hits
// from earlier tests in its on-disk narinfo cache.
import { execFileSync, execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestContext } from 'node:test';
import { skipTest } from './skip.js';

const execFileAsync = promisify(execFile);

const NIX_CONF = [
  'experimental-features = nix-command',
  'sandbox = false',
  'substituters =',
  'narinfo-cache-negative-ttl = 0',
  'narinfo-cache-positive-ttl = 0',
  '',
].join('\n');

let cachedEnv: NodeJS.ProcessEnv | undefined;
let cachedHasNix: boolean | undefined;

/** process.env plus a private NIX_CONF_DIR and XDG_CACHE_HOME, created once per process. */
export function nixEnv(): NodeJS.ProcessEnv {
  if (cachedEnv !== undefined) {
    // Without its config Nix would fall back to the sandbox, where /bin/sh does not exist: if anything
    // removed the temp dir under a long test run, write it again rather than fail obscurely.
    const confDir = cachedEnv['NIX_CONF_DIR']!;
    if (!existsSync(join(confDir, 'nix.conf'))) {
      console.error(`nix-env: ${confDir}/nix.conf vanished; writing it again`);
      mkdirSync(confDir, { recursive: true });
      mkdirSync(cachedEnv['XDG_CACHE_HOME']!, { recursive: true });
      writeFileSync(join(confDir, 'nix.conf'), NIX_CONF);
    }
    return cachedEnv;
  }
  const dir = mkdtempSync(join(tmpdir(), 'loft-nix-env-'));
  const confDir = join(dir, 'conf');
  const cacheDir = join(dir, 'cache');
  mkdirSync(confDir);
  mkdirSync(cacheDir);
  writeFileSync(join(confDir, 'nix.conf'), NIX_CONF);
  // Removed when the process ends; node:test's after() hooks are per file, this is per process.
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  cachedEnv = { ...process.env, NIX_CONF_DIR: confDir, XDG_CACHE_HOME: cacheDir };
  return cachedEnv;
}

/** True when `nix` runs (checked once). */
export function hasNix(): boolean {
  if (cachedHasNix !== undefined) return cachedHasNix;
  try {
    execFileSync('nix', ['--version'], { env: nixEnv(), stdio: 'ignore' });
    cachedHasNix = true;
  } catch {
    cachedHasNix = false;
  }
  return cachedHasNix;
}

/**
 * Call at the top of a test that needs Nix. Returns true when Nix is there; without Nix it skips the
 * test, tagged, and returns false. Under CI the test runner turns that skip into a failure
 * (scripts/skip-policy.mjs): CI has Nix, so a skipped test would hide breakage.
 */
export function requireNix(t: Pick<TestContext, 'skip'>): boolean {
  if (hasNix()) return true;
  skipTest(
    t,
    'nix',
    'nix is not on PATH: this test needs the Nix package manager (e.g. apt-get install nix-bin)',
  );
  return false;
}

/**
 * Runs a Nix executable with the private config: `args[0]` is the program (`nix`, `nix-store`,
 * `nix-build`, `nix-instantiate`), the rest its arguments. Rejects with execFile's error (which
 * carries stderr) when it exits non-zero.
 */
export async function nixBin(
  args: string[],
  env?: NodeJS.ProcessEnv,
): Promise<{ stdout: string; stderr: string }> {
  const [bin, ...rest] = args;
  if (bin === undefined) throw new Error('nixBin needs the program name as args[0]');
  return await execFileAsync(bin, rest, { env: env ?? nixEnv(), maxBuffer: 1 << 30, encoding: 'utf8' });
}

/** Like nixBin, with stdout as bytes (for `nix-store --dump` of small paths). */
export async function nixBinBuffer(args: string[], env?: NodeJS.ProcessEnv): Promise<Buffer> {
  const [bin, ...rest] = args;
  if (bin === undefined) throw new Error('nixBinBuffer needs the program name as args[0]');
  const { stdout } = await execFileAsync(bin, rest, {
    env: env ?? nixEnv(),
    maxBuffer: 1 << 30,
    encoding: 'buffer',
  });
  return stdout;
}
