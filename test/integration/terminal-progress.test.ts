// The live progress display as a person sees it: the built CLI on a real pseudo-terminal (util-linux
// `script`), at a given width, uploading a fixture closure to s3rver. The display must never be
// wider than the terminal, must end at 100 % with every path committed, and the summary must be the
// last line, with no redraw after it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildFixtureClosure, deleteStorePaths, type FixtureCase } from '../helpers/fixtures.js';
import { LOFT_MAIN } from '../helpers/loft-cli.js';
import { hasNix, nixEnv, requireNix } from '../helpers/nix-env.js';
import { startS3Server, type TestS3 } from '../helpers/s3-server.js';
import { makeNixKey } from '../helpers/signing-keys.js';
import { recordChildOutput } from '../helpers/test-secrets.js';
import { closureOf, writeConfig } from '../helpers/upload-env.js';

const execFileAsync = promisify(execFile);
const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs the CLI on a pseudo-terminal `columns` wide; returns what the terminal received. */
async function onTerminal(columns: number, args: string[]): Promise<string> {
  const cmd = `stty cols ${columns} rows 24; exec ${[process.execPath, LOFT_MAIN, ...args].map(sh).join(' ')}`;
  const { stdout } = await execFileAsync('script', ['-qec', cmd, '/dev/null'], {
    env: nixEnv(),
    maxBuffer: 1 << 26,
  });
  recordChildOutput('terminal-progress', Buffer.from(stdout), Buffer.alloc(0));
  return stdout;
}

/** The lines a terminal ends up showing: each redraw (`\r` + erase line) replaces the line. */
function screenSegments(raw: string): string[] {
  /* eslint-disable no-control-regex -- the escape sequences are what is parsed here */
  return raw
    .split(/\r\x1b\[2K|\r?\n/)
    .map((s) => s.replace(/\x1b\[[0-9;]*m/g, '').trimEnd())
    .filter((s) => s !== '');
  /* eslint-enable no-control-regex */
}

describe('progress on a terminal', () => {
  let dir: string;
  let s3: TestS3;
  let fixtures: Record<FixtureCase, string>;

  before(async () => {
    if (!hasNix()) return;
    dir = await mkdtemp(join(tmpdir(), 'loft-progress-'));
    s3 = await startS3Server();
    fixtures = await buildFixtureClosure({ largeFileMb: 24 });
  });
  after(async () => {
    if (fixtures) await deleteStorePaths(Object.values(fixtures));
    await s3?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const columns of [40, 80, 160]) {
    test(`${columns} columns: fits, ends at 100 % with every path committed, summary last`, async (t) => {
      if (!requireNix(t)) return;
      const sub = await mkdtemp(join(dir, `c${columns}-`));
      const key = await makeNixKey(sub, `loft-progress-${columns}`);
      // A bucket prefix per width, so every run uploads the whole closure.
      const config = await writeConfig({
        dir: sub,
        s3: { ...s3, keyPrefix: `w${columns}/` },
        signingKeyPath: key.secretPath,
      });
      const closure = await closureOf([fixtures.top, fixtures.large, fixtures.caUser]);
      const raw = await onTerminal(columns, [
        '-c',
        config,
        '--upload-path',
        fixtures.top,
        fixtures.large,
        fixtures.caUser,
      ]);
      const segments = screenSegments(raw);
      const progress = segments.filter((s) => /^\[\d+\/\d+\]/.test(s));
      assert.ok(progress.length > 0, `a progress line was drawn:\n${raw}`);
      for (const p of progress) assert.ok(p.length <= columns - 1, `"${p}" fits in ${columns - 1}`);
      const n = closure.length;
      assert.match(progress[progress.length - 1]!, new RegExp(`^\\[${n}/${n}\\] 100% `));
      for (const p of progress.slice(0, -1)) assert.doesNotMatch(p, /100%/, 'no 100 % before the end');
      const last = segments[segments.length - 1]!;
      assert.match(
        last,
        new RegExp(`^uploaded ${n} paths `),
        `the summary is last:\n${JSON.stringify(segments)}`,
      );
    });
  }
});
