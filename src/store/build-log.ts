// A derivation's build log as the local Nix keeps it (libstore local-fs-store.cc, getBuildLogExact):
//   <NIX_LOG_DIR or /nix/var/log/nix>/drvs/<first 2 chars of the drv base name>/<the rest>[.bz2]
// Nix writes it bzip2-compressed by default (`compress-build-log`), plain otherwise. The cache gets
// it decompressed, as `nix store copy-log` uploads it. Node has no bzip2: format/bzip2.ts decodes it
// in the process (a child per log is a fork of the whole uploader, the costliest part of a closure
// upload), and the `bzip2` program (`bzip2 -dc FILE`, no shell) decodes what that decoder refuses,
// and gives a damaged file bzip2's own words.
import { execFile } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError, NixError } from '../errors.js';
import { Bzip2TooLarge, decodeBzip2 } from '../format/bzip2.js';

/** Logs above this size are not uploaded: a runaway build's gigabytes help no `nix log` reader. */
export const MAX_BUILD_LOG_BYTES = 64 * 1024 * 1024;
/** `.bz2` logs up to this size are decoded in the process (a few MB of text, a tenth of a second). */
export const IN_PROCESS_BZIP2_BYTES = 256 * 1024;

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
  const text = await readLogFile(plain);
  if (text !== undefined) return text.length > MAX_BUILD_LOG_BYTES ? undefined : text;
  const bz2 = `${plain}.bz2`;
  const packed = await readLogFile(bz2);
  if (packed === undefined) return undefined;
  // The decoder runs on the main thread (about 12 MB/s of output here): a large log goes to the
  // program rather than stall the uploads for seconds; its one fork is cheap beside its size.
  if (packed.length <= IN_PROCESS_BZIP2_BYTES) {
    try {
      return decodeBzip2(packed, MAX_BUILD_LOG_BYTES);
    } catch (err) {
      if (err instanceof Bzip2TooLarge) return undefined;
      // Refused: the program decodes it, or says in its own words what is wrong.
      if (!(err instanceof FormatError)) throw err;
    }
  }
  return await bunzip2(bz2, opts.bzip2 ?? 'bzip2');
}

/**
 * A log file's bytes, undefined when there is none. One up to IN_PROCESS_BZIP2_BYTES (nearly every
 * log) is read with synchronous calls, as the NAR reader reads small files: through the thread
 * pool, the two tries (plain, then .bz2) were five round trips per path, each a hand-off between
 * threads, for a file of a few hundred bytes on a local disk.
 */
async function readLogFile(path: string): Promise<Buffer | undefined> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    return absentIsUndefined(err);
  }
  try {
    if (fstatSync(fd).size <= IN_PROCESS_BZIP2_BYTES) return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
  return await readFile(path).catch(absentIsUndefined);
}

function absentIsUndefined(err: unknown): undefined {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
  throw err;
}

function bunzip2(file: string, program: string): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    execFile(
      program,
      ['-dc', '--', file],
      { encoding: 'buffer', maxBuffer: MAX_BUILD_LOG_BYTES },
      (err, stdout, stderr) => {
        if (err === null) return resolve(stdout);
        if (err.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') return resolve(undefined);
        const why = err.code === 'ENOENT' ? `${program} is not installed` : stderr.toString('utf8').trim();
        reject(new NixError(`cannot decompress the build log ${file}: ${why.split('\n')[0] ?? ''}`));
      },
    );
  });
}
