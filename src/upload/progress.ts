// What the uploader tells the outside world while it works. The CLI picks a terminal display or log
// lines; the uploader only calls these hooks.
import type { Logger } from '../log.js';
import type { UploadedPath } from './upload-path.js';

export interface ProgressSink {
  /** `slots`: NAR uploads at once (the upload threads). */
  planned(paths: number, narBytes: number, slots: number): void;
  /** A path's upload starts (its NAR is `narSize` bytes). */
  started(path: string, narSize: number): void;
  /** `n` more NAR bytes of `path` were read and passed on towards the object store. */
  narBytes(path: string, n: number): void;
  /** `n` more compressed bytes of `path` came out of the compressor. */
  fileBytes(path: string, n: number): void;
  /** The target acknowledged `n` more compressed bytes of `path` (a part, a PUT, a file written). */
  storedBytes(path: string, n: number): void;
  /** The path's whole NAR is stored and checked; it is `fileSize` bytes compressed. */
  narStored(path: string, fileSize: number): void;
  uploaded(result: UploadedPath): void;
  failed(path: string, error: unknown): void;
  retrying(path: string, attempt: number, error: unknown, delayMs: number): void;
  done(): void;
}

/** Structured log lines, one per event worth keeping: for services and pipes. */
export function logProgress(logger: Logger): ProgressSink {
  return {
    planned: (paths, narBytes) => logger.info({ paths, narBytes }, 'uploading'),
    started: (path) => logger.debug({ path }, 'upload started'),
    narBytes: () => undefined,
    fileBytes: () => undefined,
    storedBytes: () => undefined,
    narStored: () => undefined,
    uploaded: (r) => logger.info({ path: r.path, narSize: r.narSize, fileSize: r.fileSize }, 'uploaded'),
    failed: (path, error) => logger.error({ path, err: error }, 'upload failed'),
    retrying: (path, attempt, error, delayMs) =>
      logger.warn({ path, attempt, delayMs, err: error }, 'upload failed, retrying'),
    done: () => undefined,
  };
}
