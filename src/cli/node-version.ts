// The Node.js versions loft refuses to run on, and the one line that says so. Older ones fail far
// from the cause: Node 20 loads the native SQLite addon built for the pinned Node and dies in a
// segmentation fault, and node:zlib compresses zstd only from 22.15 (and 23.8). Pure.

/** The oldest Node.js loft runs on (README, "Which Node"). */
export const MIN_NODE = '22.15.0';

/** Whether `version` ("20.20.2", as in process.versions.node) has what loft needs. */
export function nodeIsRecentEnough(version: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  if (major >= 24) return true;
  if (major === 23) return minor >= 8;
  return major === 22 && minor >= 15;
}

/** The refusal for a Node.js too old, naming it and where it was found. */
export function nodeTooOldMessage(version: string, execPath: string): string {
  return (
    `Node.js ${version} (${execPath}) is too old: loft needs ${MIN_NODE} or newer; run it as ` +
    `npx loft or bin/loft in a checkout (the pinned Node), or put a newer node first on PATH`
  );
}
