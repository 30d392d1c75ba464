// Running the built loft CLI and `nix copy` for the upload bench: config files, one timed upload,
// and what each run tells (compressed bytes from loft's per-path log lines, du of a file cache).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { logLines } from '../../test/helpers/loft-cli.js';
import { nixEnv } from '../../test/helpers/nix-env.js';
import { runTimed, type TimedRun } from './timed-command.js';

export const LOFT_MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export type LoftTarget = { s3: { endpoint: string; bucket: string } } | { localDir: string };

export interface LoftSettings {
  /** Extra lines for [loft] (e.g. "upload_threads = 4"); none: the defaults. */
  loftLines?: string[];
  s3Lines?: string[];
}

/** Writes `dir/loft.toml` (presence db `dir/cache.db`) and returns its path. */
export function writeLoftConfig(
  dir: string,
  target: LoftTarget,
  keyPath: string,
  settings: LoftSettings = {},
): string {
  mkdirSync(dir, { recursive: true });
  const lines =
    's3' in target
      ? [
          '[s3]',
          `bucket = "${target.s3.bucket}"`,
          'region = "us-east-1"',
          `endpoint = "${target.s3.endpoint}"`,
          'force_path_style = true',
          'access_key = "S3RVER"',
          'secret_key = "S3RVER"',
          ...(settings.s3Lines ?? []),
        ]
      : ['[local]', `path = "${target.localDir}"`];
  lines.push(
    '[loft]',
    `local_cache_path = "${join(dir, 'cache.db')}"`,
    `signing_key_path = "${keyPath}"`,
    'skip_signed_by_keys = []',
    ...(settings.loftLines ?? []),
  );
  const path = join(dir, 'loft.toml');
  writeFileSync(path, lines.join('\n') + '\n', { mode: 0o600 });
  return path;
}

export interface LoftRun extends TimedRun {
  uploaded: number;
  narBytes: number;
  fileBytes: number;
}

/**
 * The command that runs `main` as a user's installed loft does: without extra Node options, the
 * file itself as a program, as npm's bin link runs it, so its shebang's launch settings apply
 * (src/cli/launch-env.ts; a build from before them has a plain `#!/usr/bin/env node`). The shebang
 * finds `node` on PATH: this Node's directory goes first, so both builds run on the same Node.
 */
export function loftCommand(
  main: string,
  extraNodeArgs: string[],
  env: NodeJS.ProcessEnv,
): { cmd: string; args: string[]; env: NodeJS.ProcessEnv } {
  if (extraNodeArgs.length > 0) return { cmd: process.execPath, args: [...extraNodeArgs, main], env };
  const path = `${dirname(process.execPath)}:${env['PATH'] ?? process.env['PATH'] ?? ''}`;
  return { cmd: main, args: [], env: { ...env, PATH: path } };
}

/** `main`: another build's dist/cli/main.js, for a before/after comparison in one run. */
export async function runLoftUpload(
  configPath: string,
  root: string,
  extraNodeArgs: string[] = [],
  env: NodeJS.ProcessEnv = {},
  main: string = LOFT_MAIN,
): Promise<LoftRun> {
  if (!existsSync(main)) throw new Error(`${main} is missing: run 'npm run build' first`);
  const how = loftCommand(main, extraNodeArgs, { ...nixEnv(), ...env });
  const run = await runTimed(how.cmd, [...how.args, '-c', configPath, '--upload-path', root], {
    env: how.env,
  });
  let uploaded = 0;
  let fileBytes = 0;
  let narBytes = 0;
  for (const line of logLines(run.stderr)) {
    if (line['msg'] === 'uploaded') {
      uploaded++;
      fileBytes += Number(line['fileSize'] ?? 0);
      narBytes += Number(line['narSize'] ?? 0);
    }
  }
  return { ...run, uploaded, narBytes, fileBytes };
}

/** `nix copy` of the closure into a fresh file:// cache, zstd, signed like loft's narinfos. */
export async function runNixCopy(dir: string, root: string, keyPath: string): Promise<TimedRun> {
  const url = `file://${dir}?compression=zstd&secret-key=${keyPath}`;
  return await runTimed(
    'nix',
    ['--extra-experimental-features', 'nix-command', 'copy', '--to', url, '--', root],
    { env: nixEnv() },
  );
}

export async function runPathInfo(root: string): Promise<TimedRun> {
  return await runTimed(
    'nix',
    ['--extra-experimental-features', 'nix-command', 'path-info', '--json', '--recursive', '--', root],
    {
      env: nixEnv(),
    },
  );
}

/** Bytes of the NAR files under a directory (`du -sb DIR/nar`). */
export function narDirBytes(dir: string): number {
  const out = execFileSync('du', ['-sb', join(dir, 'nar')], { encoding: 'utf8' });
  return Number(out.split('\t')[0]);
}

export function generateSigningKey(path: string): void {
  const key = execFileSync(
    'nix',
    ['--extra-experimental-features', 'nix-command', 'key', 'generate-secret', '--key-name', 'loft-bench-1'],
    {
      env: nixEnv(),
      encoding: 'utf8',
    },
  );
  writeFileSync(path, key.trim(), { mode: 0o600 });
}
