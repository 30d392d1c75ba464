// Temp directories with config files for the loader tests, removed after each test file.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, KeyError } from '../../../src/errors.js';
import { loadConfig, type LoadOptions } from '../../../src/config/load.js';
import type { LoadResult } from '../../../src/config/schema.js';

/** A TEST-ONLY key made by `nix key generate-secret --key-name loft-config-test-1` (see its README). */
export const FIXTURE_KEY = fileURLToPath(
  new URL('../../fixtures/config/test-only-signing-key.sec', import.meta.url),
);
export const FIXTURE_KEY_NAME = 'loft-config-test-1';
/** Its public key, from `nix key convert-secret-to-public`. */
export const FIXTURE_PUBLIC = 'Fj7LEcgg4d9pg5hxtVtWJkA9vb9MWEVP7pr/nvxP094=';

export interface TempConfigs {
  /** A fresh directory holding `files` (relative name -> contents, mode 0600). */
  workdir: (files?: Record<string, string>) => Promise<string>;
  /** The fixture key file's text, without a trailing newline. */
  keyText: () => string;
}

/** Registers before/after hooks in the calling test file. */
export function useTempConfigs(): TempConfigs {
  let dir = '';
  let key = '';
  let counter = 0;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loft-config-'));
    key = (await readFile(FIXTURE_KEY, 'utf8')).trim();
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return {
    async workdir(files = {}) {
      const d = join(dir, `w${counter++}`);
      await mkdir(d, { recursive: true });
      for (const [name, contents] of Object.entries(files)) {
        await mkdir(join(d, name, '..'), { recursive: true });
        await writeFile(join(d, name), contents, { mode: 0o600 });
      }
      return d;
    },
    keyText: () => key,
  };
}

export function load(cwd: string, opts: Partial<LoadOptions> = {}): Promise<LoadResult> {
  return loadConfig({ explicit: false, env: { HOME: '/home/t' }, cwd, ...opts });
}

/** The rejection of `promise`, checked to be a one-line error of `type`. */
export async function rejection(
  promise: Promise<unknown>,
  type: typeof ConfigError | typeof KeyError = ConfigError,
): Promise<string> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), err.message);
    return err.message;
  }
  assert.fail('expected a rejection');
}
