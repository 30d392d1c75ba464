// The embedded default (no config file): one-off uploads into ./loft-cache, unsigned, and saying so
// on every run. Its presence database is one file per cache directory, so two working directories
// no longer share one database and empty it for each other on every switch (issue 11).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { LOFT_MAIN, runLoft } from '../helpers/loft-cli.js';
import { hasNix, nixBin, nixEnv, requireNix } from '../helpers/nix-env.js';

const execFileAsync = promisify(execFile);
import { hashPartOfPath } from '../helpers/upload-env.js';

describe('loft without a config file', () => {
  let dir: string;
  let path: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loft-embedded-'));
    if (!hasNix()) return;
    await writeFile(join(dir, 'payload'), `embedded default ${Date.now()} ${Math.random()}\n`);
    path = (await nixBin(['nix-store', '--add', join(dir, 'payload')])).stdout.trim();
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('two working directories keep their own presence database; every run says unsigned', async (t) => {
    if (!requireNix(t)) return;
    const env = { XDG_STATE_HOME: join(dir, 'state') };
    const a = await mkdtemp(join(dir, 'a-'));
    const b = await mkdtemp(join(dir, 'b-'));
    for (const [cwd, expected] of [
      [a, 'uploaded 1 path'],
      [b, 'uploaded 1 path'],
      [a, 'uploaded 0 paths'],
    ] as const) {
      const run = await runLoft(['--upload-path', path], { cwd, env });
      assert.equal(run.code, 0, run.stderr);
      assert.ok(run.stdout.includes(expected), run.stdout);
      assert.match(run.stderr, /using the embedded default, an UNSIGNED cache in .*loft-cache/);
      assert.match(run.stdout, /^unsigned: no signing key configured/m);
      assert.ok(!run.stderr.includes('belonged to another target'), run.stderr);
      const files = await readdir(join(cwd, 'loft-cache'));
      assert.ok(files.includes(`${hashPartOfPath(path)}.narinfo`));
    }
    const dbs = (await readdir(join(dir, 'state', 'loft'))).filter((f) => f.endsWith('.db'));
    assert.equal(dbs.length, 2, dbs.join(' '));
    // `a`'s database still knows its path, and the last upload (a CLI upload counts too).
    const status = await runLoft(['--status'], { cwd: a, env });
    assert.match(status.stdout, /^presence cache: 1 path known to be in the cache/m);
    assert.match(status.stdout, /^last upload: \d{4}-/m);
  });

  test('on a terminal, the unsigned warning comes before the summary, not after it', async (t) => {
    if (!requireNix(t)) return;
    const cwd = await mkdtemp(join(dir, 'tty-'));
    // util-linux `script` gives loft a pseudo-terminal, so it logs through pino-pretty.
    const cmd = [process.execPath, LOFT_MAIN, '--upload-path', path].map((a) => `'${a}'`).join(' ');
    const { stdout } = await execFileAsync('script', ['-qec', `exec ${cmd}`, '/dev/null'], {
      cwd,
      env: { ...nixEnv(), XDG_STATE_HOME: join(dir, 'tty-state') },
    });
    const warning = stdout.indexOf('using the embedded default');
    const summary = stdout.indexOf('uploaded 1 path');
    assert.ok(warning >= 0 && summary >= 0, stdout);
    assert.ok(warning < summary, `the warning came after the summary:\n${stdout}`);
    // Every log line starts by clearing its row, so one logged while the progress line is drawn
    // (which has no newline) does not land on the end of it.
    // eslint-disable-next-line no-control-regex -- the escape sequence is what is checked
    const logLines = [...stdout.matchAll(/(\r\x1b\[2K)?(?:\x1b\[[0-9;]*m)*\[\d\d:\d\d:\d\d(?:\.\d+)?\]/g)];
    assert.ok(logLines.length > 0, stdout);
    for (const m of logLines)
      assert.ok(m[1] !== undefined, `a log line without a clear before it:\n${JSON.stringify(stdout)}`);
  });
});
