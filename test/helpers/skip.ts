// The one way a test skips: skipTest(t, need, why) tags the reason with what the test lacks
// ("[needs nix] ..."), so scripts/run-tests.mjs can list every skip after the run and, under CI,
// fail on the ones CI should never see (scripts/skip-policy.mjs says which may happen there).
// Call it and return: a diagnostic() in place of a skip would let the test pass.
import type { TestContext } from 'node:test';
import { skipReason, type Need } from '../../scripts/skip-policy.mjs';

export type { Need } from '../../scripts/skip-policy.mjs';

/** Skips the running test with a tagged reason, loudly on stderr too (a skip is easy to overlook). */
export function skipTest(t: Pick<TestContext, 'skip'>, need: Need, why: string): void {
  const reason = skipReason(need, why);
  console.error(`SKIPPED: ${reason}`);
  t.skip(reason);
}

/** The tagged reason for node:test's `{ skip }` option of a whole test or suite. */
export function skipOption(need: Need, why: string): string {
  return skipReason(need, why);
}
