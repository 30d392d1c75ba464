// A private Nix store of many valid paths, made fast: tiny files written straight into the store
// directory and registered in one `nix-store --register-validity` call (Nix 2.8 reads "path,
// deriver (empty), reference count, references" per path on stdin and computes each NarHash
// itself). 100,000 paths take about 13 s here, where `builtins.toFile` or `nix-store --add` would
// take minutes. Nix does not care that the names' hash parts are random: only content-addressed
// paths are checked against their contents, and these are input-addressed as far as Nix knows.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeNixBase32 } from '../../src/format/nix-base32.js';
import { nixEnv } from '../../test/helpers/nix-env.js';

export interface FilledStore {
  storeDir: string;
  /** Environment for Nix and loft: the private store's directories over nixEnv()'s config. */
  env: NodeJS.ProcessEnv;
  /** Seconds spent writing the files and registering them. */
  seconds: number;
}

/** Points this process (and its children) at a private store under `root`. */
export function usePrivateStore(root: string): { storeDir: string } {
  chmodSync(root, 0o755);
  const storeDir = join(root, 'nix', 'store');
  process.env.NIX_STORE_DIR = storeDir;
  process.env.NIX_STATE_DIR = join(root, 'nix', 'state');
  process.env.NIX_LOG_DIR = join(root, 'nix', 'log');
  // No build users and no fsync per registered path: nothing here outlives the bench.
  process.env.NIX_CONFIG = `build-users-group =\nfsync-metadata = false\n${process.env.NIX_CONFIG ?? ''}`;
  return { storeDir };
}

/** `n` text files of a few bytes each, valid paths of the private store `storeDir`. */
export function fillStore(storeDir: string, n: number): FilledStore {
  const t0 = performance.now();
  mkdirSync(storeDir, { recursive: true });
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const path = join(storeDir, `${encodeNixBase32(randomBytes(20))}-idle-${i}`);
    writeFileSync(path, `entry ${i}\n`);
    lines.push(`${path}\n\n0\n`);
  }
  const env = nixEnv();
  execFileSync('nix-store', ['--register-validity'], {
    env,
    input: lines.join(''),
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  return { storeDir, env, seconds: (performance.now() - t0) / 1000 };
}
