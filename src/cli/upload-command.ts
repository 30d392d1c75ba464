// `loft --upload-path P...` and `loft --force-scan`: upload closures and report.
import { recordMemoryUse } from './memory-use.js';
import { UploadQueue } from '../state/queue.js';
import { ExitCode, InvalidPathError, oneLine, type ExitCodeValue } from '../errors.js';
import { resolveStorePath } from '../store/resolve-path.js';
import { logProgress, type ProgressSink } from '../upload/progress.js';
import { isNotValid } from '../upload/path-not-valid.js';
import { uploadClosure, type FailedPath, type UploadReport } from '../upload/upload-closure.js';
import type { Runtime } from './runtime.js';
import { summaryLines } from './summary.js';
import { buildUploadDeps } from './upload-deps.js';
import { terminalProgress } from './terminal-progress.js';
import { quietOnTargetFailures } from './batch-uploader.js';

export interface UploadCommandIo {
  stdout: (line: string) => void;
  stderr: NodeJS.WriteStream;
  signal?: AbortSignal;
}

export async function runUpload(
  rt: Runtime,
  inputs: readonly string[],
  opts: {
    dryRun: boolean;
    explicit: boolean;
    ignoreLocalCache?: boolean;
    /** The paths come from a listing of the store (--force-scan): one that is no longer valid was
     * garbage-collected since, and is counted as gone rather than failed (as the daemon drops it). */
    listedFromStore?: boolean;
  },
  io: UploadCommandIo,
): Promise<{ report: UploadReport; exitCode: ExitCodeValue }> {
  const started = Date.now();
  rt.logger.info(
    { cache: rt.store.description },
    opts.dryRun ? 'dry run against cache' : 'uploading to cache',
  );
  const { paths, invalid } = await resolveAll(inputs, rt.config.storeDir);
  const progress: ProgressSink = quietOnTargetFailures(
    io.stderr.isTTY ? terminalProgress(io.stderr) : logProgress(rt.logger),
  );
  const report = await uploadClosure(
    {
      paths,
      explicit: opts.explicit,
      dryRun: opts.dryRun,
      ...(opts.ignoreLocalCache ? { ignoreLocalCache: true } : {}),
    },
    buildUploadDeps(rt, { progress, ...(io.signal ? { signal: io.signal } : {}) }),
  );
  if (opts.listedFromStore) setAsideVanished(report);
  report.failed.unshift(...invalid);
  report.requested.unshift(...invalid.map((f) => f.path));
  recordRun(rt, report.uploaded.length > 0);
  if (!rt.config.signingKey) {
    io.stdout('unsigned: no signing key configured (loft.signing_key_path); Nix needs require-sigs = false');
  }
  rt.logger.debug({ uploaded: report.uploaded.length, failed: report.failed.length }, 'upload finished');
  // Last: after the progress display's final line and every log line of the run.
  for (const line of summaryLines(report, Date.now() - started, opts.dryRun)) io.stdout(line);
  return { report, exitCode: exitCodeFor(report, invalid) };
}

function setAsideVanished(report: UploadReport): void {
  const gone = new Set(report.failed.filter(isNotValid).map((f) => f.path));
  report.vanished = [...gone];
  report.failed = report.failed.filter((f) => !gone.has(f.path));
}

/**
 * What `--status` shows as the last upload, for CLI uploads as for the daemon's, and the memory
 * budget's use by a run that uploaded something.
 */
function recordRun(rt: Runtime, uploaded: boolean): void {
  if (!uploaded && rt.uploads === undefined) return;
  const queue = UploadQueue.open(rt.config.localCachePath);
  try {
    if (uploaded) queue.setState('last_upload_at', String(Date.now()));
    recordMemoryUse(queue, rt);
  } finally {
    queue.close();
  }
}

async function resolveAll(inputs: readonly string[], storeDir: string) {
  const paths: string[] = [];
  const invalid: FailedPath[] = [];
  for (const input of inputs) {
    try {
      paths.push(await resolveStorePath(input, storeDir));
    } catch (err) {
      if (!(err instanceof InvalidPathError)) throw err;
      invalid.push({ path: input, code: err.code, message: oneLine(err) });
    }
  }
  return { paths: [...new Set(paths)], invalid };
}

/** 1 when an upload failed; 5 when only the requested paths themselves were bad; else 0. */
function exitCodeFor(report: UploadReport, invalid: FailedPath[]): ExitCodeValue {
  const uploadFailures = report.failed.filter((f) => !isNotValid(f));
  if (uploadFailures.length > 0) return ExitCode.partial;
  if (invalid.length > 0 || report.failed.length > 0) return ExitCode.nix;
  return ExitCode.ok;
}
