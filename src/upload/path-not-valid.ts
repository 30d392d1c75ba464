// One test for "Nix said this path is not valid", shared by everyone who reads an upload's failures.
// Such a path is absent or not registered yet: Nix 2.8 moves a build's output into the store before
// it registers it as valid (store events are only hints), and a path may be garbage-collected
// between the listing and its upload. The daemon retries it later or drops it once it is gone, a
// --watch-exec session tries it again on its next hint, and --upload-path counts it as vanished:
// none of them counts it as a failed upload.
import type { ErrorCode } from '../errors.js';

/** True when the failure is Nix answering that the path is not valid (InvalidPathError). */
export function isNotValid(failure: { code: ErrorCode }): boolean {
  return failure.code === 'E_INVALID_PATH';
}
