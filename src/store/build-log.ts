// A derivation's build log as the local Nix keeps it (libstore local-fs-store.cc, getBuildLogExact):
//   <NIX_LOG_DIR or /nix/var/log/nix>/drvs/<first 2 chars of the drv base name>/<the rest>[.bz2]
// Nix writes it bzip2-compressed by default (`compress-build-log`), plain otherwise. The cache gets
// it decompressed, as `nix store copy-log` uploads it. Node has no bzip2, so the Debian/Nix
// `bzip2` program decodes it (`bzip2 -dc FILE`), run by one small helper shell
// (src/store/bunzip2-helper.ts) rather than spawned from loft for each log.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NixError } from '../errors.js';
import { Bunzip2Helper } from './bunzip2-helper.js';

/** Logs above this size are not uploaded: a runaway build's gigabytes help no `nix log` reader. */
export const MAX_BUILD_LOG_BYTES = 64 * 1024 * 1024;

export interface BuildLogOptions {
  env?: NodeJS.ProcessEnv;
  /** The bzip2 program (default `bzip2` on PATH). */
  bzip2?: string;
}

/** Nix's `nixLogDir`: NIX_LOG_DIR when set and not empty, else the compiled-in default. */
export function buildLogDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env['NIX_LOG_DIR'];
  return dir === undefined || dir === '' ? '/nix/var/log/nix' : dir;
}

/** Where the log of `drvBaseName` would be, without its `.bz2`. */
export function buildLogPath(drvBaseName: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(buildLogDir(env), 'drvs', drvBaseName.slice(0, 2), drvBaseName.slice(2));
}

/**
 * The decompressed log of a derivation, or undefined when this machine has none (built elsewhere,
 * substituted, or logs turned off). NixError when the `.bz2` cannot be decoded or is too large.
 */
export async function readBuildLog(
  drvBaseName: string,
  opts: BuildLogOptions = {},
): Promise<Buffer | undefined> {
  const plain = buildLogPath(drvBaseName, opts.env);
  const text = await readFile(plain).catch(absentIsUndefined);
  if (text !== undefined) return text.length > MAX_BUILD_LOG_BYTES ? undefined : text;
  const bz2 = `${plain}.bz2`;
  const packed = await readFile(bz2).catch(absentIsUndefined);
  if (packed === undefined) return undefined;
  return await bunzip2(bz2, opts.bzip2 ?? 'bzip2');
}

function absentIsUndefined(err: unknown): undefined {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
  throw err;
}

/** One helper per bzip2 program, started at the first `.bz2` log and kept while loft runs. */
const helpers = new Map<string, Bunzip2Helper>();

async function bunzip2(file: string, program: string): Promise<Buffer | undefined> {
  let helper = helpers.get(program);
  if (helper === undefined) {
    helper = new Bunzip2Helper(program, MAX_BUILD_LOG_BYTES + 1);
    helpers.set(program, helper);
  }
  let r: Awaited<ReturnType<Bunzip2Helper['decompress']>>;
  try {
    r = await helper.decompress(file);
  } catch (err) {
    throw new NixError(`cannot decompress the build log ${file}: ${(err as Error).message}`);
  }
  if (r.kind === 'ok') return r.body;
  if (r.kind === 'big') return undefined;
  throw new NixError(`cannot decompress the build log ${file}: ${r.message}`);
}
