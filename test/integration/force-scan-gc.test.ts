// `loft --force-scan` while the garbage collector runs: a path listed by `nix path-info --all` and
// collected before loft reads it is skipped and counted, as the daemon drops it; the run still
// succeeds. Nix runs against a private store (NIX_STORE_DIR in a temp dir, set before any Nix call)
// so the scan covers only what this file builds. The collection happens at the worst moment: a
// wrapper around the real `nix` deletes the victim, with the real `nix-store --delete`, right after
// the listing returns.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { chmod, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomSalt } from '../helpers/fixtures.js';
import { usePrivateNixStore } from '../helpers/integration-env.js';
import { runLoft } from '../helpers/loft-cli.js';
import { hasNix, nixBin, nixEnv, requireNix } from '../helpers/nix-env.js';
import { hashPartOfPath, writeConfig } from '../helpers/upload-env.js';

const nixStore = usePrivateNixStore('loft-force-scan-gc-');
const { root } = nixStore;

after(() => nixStore.remove());

/** Builds two unrelated outputs in the private store; returns their paths. */
async function buildTwo(): Promise<[string, string]> {
  const expr = join(root, 'two.nix');
  const one = (name: string) => `derivation {
    name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin";
    salt = "${randomSalt()}"; args = [ "-c" "echo ${name} > $out" ];
  }`;
  await writeFile(expr, `[ (${one('loft-scan-kept')}) (${one('loft-scan-collected')}) ]\n`);
  const { stdout } = await nixBin(['nix-build', '--no-out-link', expr]);
  const [kept, collected] = stdout.trim().split('\n');
  return [kept!, collected!];
}

/**
 * A `nix` that runs the real one and, after `path-info --all`, collects `victim`. The path is read
 * from a file: Nix's collector treats store paths in any process's environment as roots.
 */
async function gcAfterListing(victim: string): Promise<string> {
  const bin = join(root, 'bin');
  await mkdir(bin, { recursive: true });
  const victimFile = join(root, 'victim');
  await writeFile(victimFile, victim);
  const realNix = execFileSync('sh', ['-c', 'command -v nix'], { env: nixEnv() }).toString().trim();
  const script = `#!/bin/sh
${JSON.stringify(realNix)} "$@"
rc=$?
case " $* " in
  *" path-info --all "*) nix-store --delete -- "$(cat ${JSON.stringify(victimFile)})" >/dev/null 2>&1 ;;
esac
exit $rc
`;
  await writeFile(join(bin, 'nix'), script);
  await chmod(join(bin, 'nix'), 0o755);
  return bin;
}

describe('--force-scan with a path garbage-collected during the scan', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(root, 'run-'));
  });

  test('skips and counts the collected path, uploads the rest, exits 0', async (t) => {
    if (!hasNix()) return void requireNix(t);
    const [kept, collected] = await buildTwo();
    const cache = join(dir, 'cache');
    const config = await writeConfig({ dir, localPath: cache });
    const bin = await gcAfterListing(collected);
    const env = { ...nixEnv(), PATH: `${bin}:${process.env.PATH ?? ''}` };
    const run = await runLoft(['-c', config, '--force-scan'], { env });
    assert.ok(
      !existsSync(collected),
      `the wrapper collected the victim during the scan: ${run.stdout}${run.stderr}`,
    );
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^uploaded 1 path .*, 0 failed, 1 path garbage-collected during the scan, in /m);
    const files = await readdir(cache);
    assert.ok(files.includes(`${hashPartOfPath(kept)}.narinfo`), files.join(' '));
    assert.ok(!files.includes(`${hashPartOfPath(collected)}.narinfo`));
  });
});
