// Which skipped tests CI tolerates. A test that cannot run on this machine skips through
// test/helpers/skip.ts, whose reason opens with a tag naming what it lacks: "[needs nix] nix is not
// on PATH ...". The runner (scripts/run-tests.mjs) collects every skip, lists them after the run,
// and under CI fails the run for each skip CI could have avoided: CI provides Nix, root, nginx,
// moto, python3, openssl and the zstd and xz tools, so a test skipped for lack of one of them is
// breakage hidden as a skip. Only the S3 choice may skip there: a test that needs the in-process
// server skips while LOFT_TEST_S3_ENDPOINT names another one, and a test made for a real service
// skips against the in-process one. And the built CLI: the Nix package's unit check runs the unit tests
// under CI without a build, where the final log check finds no loft process to check (a full run
// builds first, and every integration test would fail without it). A skip without a tag cannot be
// judged, so under CI it fails too.

/** What a skipped test may lack, as written in its tag. */
export const NEEDS = [
  'in-process-s3',
  'external-s3',
  'nix',
  'root',
  'nginx',
  'moto',
  'python3',
  'zstd',
  'xz',
  'openssl',
  'built-cli',
  'readable-checkout',
  'test-runner',
  'old-node',
];

/**
 * The needs a CI run may leave unmet: the S3 server it was not given, a build it did not make, and
 * a Node.js older than loft supports (to show the refusal), which CI does not install.
 */
export const CI_MAY_SKIP = ['in-process-s3', 'external-s3', 'built-cli', 'old-node'];

const TAG = /^\[needs ([a-z0-9-]+)\] \S/;

/** The reason a skip gives: the tag, then the sentence a reader sees. */
export function skipReason(need, why) {
  if (!NEEDS.includes(need)) throw new Error(`unknown need ${JSON.stringify(need)}: add it to NEEDS`);
  return `[needs ${need}] ${why}`;
}

/** The need a skip's reason names, or undefined when it carries no (known) tag. */
export function needOf(reason) {
  if (typeof reason !== 'string') return undefined;
  const need = TAG.exec(reason)?.[1];
  return need !== undefined && NEEDS.includes(need) ? need : undefined;
}

/** True when the environment says this is a CI run (CI set to anything but "", "0" or "false"). */
export function isCI(env) {
  const ci = env['CI'];
  return ci !== undefined && ci !== '' && ci !== '0' && ci !== 'false';
}

/**
 * The report of a run's skips: one line per skip, and under CI a line per skip that fails the run.
 * `skips` are {file, name, reason}; returns {lines, failures}, failures being the offending skips.
 */
export function judgeSkips(skips, ci) {
  const lines = [];
  const failures = [];
  if (skips.length === 0) return { lines, failures };
  lines.push(`skipped tests: ${skips.length}`);
  for (const s of skips) {
    const need = needOf(s.reason);
    const reason = typeof s.reason === 'string' ? s.reason : '(no reason given)';
    lines.push(`  ${s.file} > ${s.name}: ${reason}`);
    if (ci && (need === undefined || !CI_MAY_SKIP.includes(need))) failures.push({ ...s, need });
  }
  if (failures.length > 0) {
    lines.push(
      `CI is set, and CI provides what these tests need (only ${CI_MAY_SKIP.join(', ')} may be missing), so each skip fails the run:`,
    );
    for (const f of failures) {
      const why =
        f.need === undefined
          ? 'the skip names no need; use skipTest() of test/helpers/skip.ts'
          : `needs ${f.need}`;
      lines.push(`  FAILED ${f.file} > ${f.name}: ${why}`);
    }
  }
  return { lines, failures };
}
