// Releasing what was opened, newest first, whatever failed: every opened thing pushes its release
// function, and the list runs in `finally`. One release that throws does not stop the others.
export type Release = () => Promise<void> | void;

export async function releaseAll(
  releases: Release[],
  onError: (err: unknown) => void = () => undefined,
): Promise<void> {
  for (const release of releases.splice(0).reverse()) {
    try {
      await release();
    } catch (err) {
      onError(err);
    }
  }
}
