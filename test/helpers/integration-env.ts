// The set-up most integration tests share: a temp directory, a real S3 server (s3-server.ts), a
// signing key made by the machine's Nix, and a loft.toml pointing at both; and, for tests that
// watch or scan the store, a private Nix store. One place to start them and one to tear them down,
// so every file cleans up the same way (even when a start fails half-way).
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { deleteStorePaths } from './fixtures.js';
import { startMotoServer } from './moto-server.js';
import { startS3Server, type TestS3 } from './s3-server.js';
import { makeNixKey, type KeyFiles } from './signing-keys.js';
import { writeConfig, type ConfigOptions } from './upload-env.js';

const execFileAsync = promisify(execFile);

/** What a test may change in the config the environment writes (dir, s3 and key by default). */
export type ConfigEdits = Partial<ConfigOptions>;

export interface IntegrationEnv {
  /** A fresh temp directory for configs, keys and databases; removed by close(). */
  dir: string;
  s3: TestS3;
  /** A key made by `nix key generate-secret` (its secret registered for the secret check). */
  key: KeyFiles;
  /** Writes `dir`/loft.toml for this server, signing with `key`, plus `edits`; returns its path. */
  config(edits?: ConfigEdits): Promise<string>;
  /** Like config(), in a fresh subdirectory `<name>-XXXXXX` (its own database and loft.toml). */
  configIn(name: string, edits?: ConfigEdits): Promise<string>;
  /** Stops the server, deletes `storePaths` from the Nix store (best effort), removes `dir`. */
  close(storePaths?: string[]): Promise<void>;
}

/** The S3 implementations the core cases run against; moto only where it is installed. */
export type S3Kind = 's3rver' | 'moto';

/**
 * Starts the environment: `prefix` names the temp directory (`loft-<what>-`), `keyName` the key,
 * `server` the S3 implementation (s3rver in-process by default, or moto as a child process: check
 * motoMissing() first). What was started before a failure is stopped again, so a test's after()
 * needs no guards for it.
 */
export async function startIntegrationEnv(
  prefix: string,
  keyName: string,
  server: S3Kind = 's3rver',
): Promise<IntegrationEnv> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  let s3: TestS3 | undefined;
  try {
    s3 = server === 'moto' ? await startMotoServer() : await startS3Server();
    const key = await makeNixKey(dir, keyName);
    return environment(dir, s3, key);
  } catch (err) {
    await s3?.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

function environment(dir: string, s3: TestS3, key: KeyFiles): IntegrationEnv {
  const config = (edits: ConfigEdits = {}, inDir = dir) =>
    writeConfig({ dir: inDir, s3, signingKeyPath: key.secretPath, ...edits });
  return {
    dir,
    s3,
    key,
    config: (edits) => config(edits),
    configIn: async (name, edits) => config(edits, await mkdtemp(join(dir, `${name}-`))),
    async close(storePaths = []) {
      await s3.close();
      if (storePaths.length > 0) await deleteStorePaths(storePaths);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface PrivateNixStore {
  /** The temp directory holding the store, its state and logs. */
  root: string;
  /** NIX_STORE_DIR: where this process's Nix (and the loft it starts) builds and looks. */
  storeDir: string;
  /** Removes the whole store; its paths are read-only, so they are made writable first. */
  remove(): Promise<void>;
}

/**
 * Points this process's Nix (and every child it starts) at a private store in a temp directory.
 * Call it at the top of a test file, before any Nix call: nix-env.ts copies process.env once.
 * A test that watches or scans the store then sees only what it built itself, and builds of other
 * test files running at the same time cannot disturb it.
 */
export function usePrivateNixStore(prefix: string): PrivateNixStore {
  const root = mkdtempSync(join(tmpdir(), prefix));
  // Nix's build users must reach the store inside it (mkdtemp makes the directory 0700).
  chmodSync(root, 0o755);
  const storeDir = join(root, 'store');
  process.env.NIX_STORE_DIR = storeDir;
  process.env.NIX_STATE_DIR = join(root, 'state');
  process.env.NIX_LOG_DIR = join(root, 'log');
  // No build users: the private store has its own user-pool locks, so its builds would share
  // nixbld1 with builds in /nix/store running at the same time, and Nix kills every process of a
  // build user when a build starts (seen here: builders "failed due to signal 9").
  process.env.NIX_CONFIG = `build-users-group =\n${process.env.NIX_CONFIG ?? ''}`;
  return {
    root,
    storeDir,
    async remove() {
      await execFileAsync('chmod', ['-R', 'u+w', root]).catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    },
  };
}
