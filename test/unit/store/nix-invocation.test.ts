// How loft runs Nix: only src/store/nix-cli.ts starts processes, with execFile (no shell), and every
// user-supplied path goes after `--`, so no path is read as an option or interpreted by a shell.
// The argument lists are checked exactly, by putting a fake `nix` first on PATH that records the
// argv it received (NUL-separated) and prints an empty path-info answer.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runNix } from '../../../src/store/nix-cli.js';
import { listValidStorePaths } from '../../../src/store/all-paths.js';
import { queryPathInfos } from '../../../src/store/path-info-query.js';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));
const FLAGS = ['--extra-experimental-features', 'nix-command'];
const HASH = 'a'.repeat(32);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sourceFiles(p) : name.endsWith('.ts') ? [p] : [];
  });
}

describe('which code starts processes', () => {
  const files = sourceFiles(SRC).map((p) => ({ path: relative(SRC, p), text: readFileSync(p, 'utf8') }));

  /** The names a file imports from node:child_process. */
  function childProcessImports(path: string): string[] {
    const text = files.find((f) => f.path === path)!.text;
    const imported = /import\s*\{([^}]*)\}\s*from\s*'node:child_process'/.exec(text)?.[1] ?? '';
    return imported
      .split(',')
      .map((n) => n.trim().replace(/^type\s+/, ''))
      .filter(Boolean)
      .sort();
  }

  test("only nix-cli.ts (execFile), the bzip2 helper and --watch-exec's exec-child.ts (spawn) import child_process", () => {
    assert.ok(files.length > 20, 'the scan sees the source tree');
    const importers = files.filter((f) => /['"](node:)?child_process['"]/.test(f.text)).map((f) => f.path);
    assert.deepEqual(importers.sort(), ['cli/exec-child.ts', 'store/bunzip2-helper.ts', 'store/nix-cli.ts']);
    assert.deepEqual(childProcessImports('store/nix-cli.ts'), ['ExecFileException', 'execFile']);
    // `bzip2 -dc -- "$f"` in one /bin/sh running a fixed script: Node has no bzip2 decoder for
    // Nix's compressed build logs. Log paths reach it on stdin and are only ever expanded quoted.
    assert.deepEqual(childProcessImports('store/bunzip2-helper.ts'), ['ChildProcessByStdio', 'spawn']);
    // The user's own command for --watch-exec: argv as given, no shell (checked below).
    assert.deepEqual(childProcessImports('cli/exec-child.ts'), ['spawn']);
  });

  test('no source file asks for a shell or uses exec/spawn', () => {
    for (const f of files) {
      assert.ok(!/\bshell\s*:/.test(f.text), `${f.path} passes a shell option`);
      const spawns =
        f.path === 'cli/exec-child.ts' || f.path === 'store/bunzip2-helper.ts'
          ? /\b(execSync|execFileSync|spawnSync|fork)\s*\(/
          : /\b(execSync|execFileSync|spawnSync|spawn|fork)\s*\(/;
      assert.ok(!spawns.test(f.text), `${f.path} spawns`);
      assert.ok(!/(^|[^.\w])exec\s*\(/.test(f.text), `${f.path} calls exec`);
      assert.ok(!/require\(\s*['"](node:)?child_process/.test(f.text), `${f.path} requires child_process`);
    }
  });
});

describe('the argv Nix receives', () => {
  let dir: string;
  let argsFile: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loft-fake-nix-'));
    argsFile = join(dir, 'argv');
    const script =
      '#!/bin/sh\nfor a in "$@"; do printf \'%s\\0\' "$a"; done > "$LOFT_FAKE_NIX_ARGS"\nprintf \'[]\'\n';
    for (const program of ['nix', 'nix-store']) {
      await writeFile(join(dir, program), script);
      await chmod(join(dir, program), 0o755);
    }
    env = { PATH: `${dir}:/usr/bin:/bin`, LOFT_FAKE_NIX_ARGS: argsFile };
  });
  after(() => rm(dir, { recursive: true, force: true }));

  async function received(): Promise<string[]> {
    const raw = await readFile(argsFile, 'utf8');
    return raw.split('\0').slice(0, -1);
  }

  test('operands go after --, byte for byte, and no shell interprets them', async () => {
    const hostile = [
      `$(touch ${join(dir, 'pwned-1')})`,
      `\`touch ${join(dir, 'pwned-2')}\``,
      `x; touch ${join(dir, 'pwned-3')}`,
      '--help',
      '-rf',
      'with space',
      'new\nline',
      '*',
      'quote\'"',
      '',
    ];
    await runNix(['path-info', '--json'], { operands: hostile, env });
    assert.deepEqual(await received(), [...FLAGS, 'path-info', '--json', '--', ...hostile]);
    for (const n of [1, 2, 3]) assert.ok(!existsSync(join(dir, `pwned-${n}`)), 'nothing was run by a shell');
  });

  test('other Nix programs get the same treatment; no operands means no --', async () => {
    await runNix(['--query', '--hash'], { program: 'nix-store', operands: [`/nix/store/${HASH}-x`], env });
    assert.deepEqual(await received(), [...FLAGS, '--query', '--hash', '--', `/nix/store/${HASH}-x`]);
    await runNix(['--version'], { env });
    assert.deepEqual(await received(), [...FLAGS, '--version']);
  });

  test('queryPathInfos: store paths after --, anything else answered without asking Nix', async () => {
    const optionLike = `/nix/store/${HASH}--version`;
    const results = await queryPathInfos([optionLike, '--help', '/etc/passwd', `/nix/store/${HASH}-ok`], {
      recursive: true,
      env,
    });
    assert.deepEqual(await received(), [
      ...FLAGS,
      'path-info',
      '--json',
      '--recursive',
      '--',
      optionLike,
      `/nix/store/${HASH}-ok`,
    ]);
    const refused = results
      .filter((r) => !r.ok)
      .map((r) => r.path)
      .sort();
    assert.deepEqual(refused, ['--help', '/etc/passwd']);
  });

  test('listValidStorePaths passes no user input', async () => {
    const saved = { PATH: process.env.PATH, LOFT_FAKE_NIX_ARGS: process.env.LOFT_FAKE_NIX_ARGS };
    Object.assign(process.env, env);
    try {
      await listValidStorePaths('/nix/store');
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    assert.deepEqual(await received(), [...FLAGS, 'path-info', '--all']);
  });
});
