// Bad input to the built CLI: each case gets one clear line on stderr, its documented exit code,
// and no stack trace.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLoft } from '../helpers/loft-cli.js';
import { hasNix, nixBin, requireNix } from '../helpers/nix-env.js';
import { startS3Server, type TestS3 } from '../helpers/s3-server.js';
import { makeNixKey, type KeyFiles } from '../helpers/signing-keys.js';
import { writeConfig } from '../helpers/upload-env.js';

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe('bad input: one line, a stable exit code', () => {
  let dir: string;
  let s3: TestS3;
  let key: KeyFiles;
  let good: string;
  /** A valid store path, so the cases that are about the bucket get as far as asking it. */
  let valid: string;

  before(async () => {
    if (!hasNix()) return;
    dir = await mkdtemp(join(tmpdir(), 'loft-cli-errors-'));
    s3 = await startS3Server();
    key = await makeNixKey(dir, 'loft-errors-test-1');
    good = await writeConfig({ dir, s3, signingKeyPath: key.secretPath });
    await writeFile(join(dir, 'payload.txt'), `cli-errors ${Date.now()}\n`);
    valid = (await nixBin(['nix-store', '--add', join(dir, 'payload.txt')])).stdout.trim();
  });
  after(async () => {
    if (!hasNix()) return;
    await nixBin(['nix-store', '--delete', '--', valid]).catch(() => undefined);
    await s3.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function configFile(name: string, text: string): Promise<string> {
    const p = join(dir, name);
    await writeFile(p, text);
    return p;
  }
  async function variant(name: string, o: Partial<Parameters<typeof writeConfig>[0]>): Promise<string> {
    const sub = await mkdtemp(join(dir, `${name}-`));
    return writeConfig({ dir: sub, s3, signingKeyPath: key.secretPath, ...o });
  }

  const cases: Array<{ name: string; code: number; message: RegExp; args: () => Promise<string[]> }> = [
    {
      name: 'unknown flag',
      code: 2,
      message: /unknown option/,
      args: () => Promise.resolve(['--uplod-path', '/x']),
    },
    {
      name: 'two actions at once',
      code: 2,
      message: /one of/,
      args: () => Promise.resolve(['-c', good, '--upload-path', '/nix/store', '--populate-cache']),
    },
    {
      name: 'config file given but missing',
      code: 3,
      message: /not found/,
      args: () => Promise.resolve(['-c', join(dir, 'nope.toml'), '--upload-path', '/etc']),
    },
    {
      name: 'malformed TOML',
      code: 3,
      message: /invalid TOML/,
      args: async () => ['-c', await configFile('bad.toml', '[s3\nbucket = "x"\n'), '--upload-path', '/etc'],
    },
    {
      name: 'wrong type',
      code: 3,
      message: /loft\.upload_threads/,
      args: async () => [
        '-c',
        await configFile('type.toml', '[loft]\nupload_threads = "many"\n'),
        '--upload-path',
        '/etc',
      ],
    },
    {
      name: 'missing signing key file',
      code: 3,
      message: /signing_key_path/,
      args: async () => [
        '-c',
        await variant('nokey', { signingKeyPath: join(dir, 'missing.key') }),
        '--upload-path',
        '/etc',
      ],
    },
    {
      name: 'malformed signing key file',
      code: 3,
      message: /key/i,
      args: async () => {
        const bad = join(dir, 'garbage.key');
        await writeFile(bad, 'name:not-base64!!\n', { mode: 0o600 });
        return ['-c', await variant('badkey', { signingKeyPath: bad }), '--upload-path', '/etc'];
      },
    },
    {
      name: 'signing key name mismatch',
      code: 3,
      message: /does not match/,
      args: async () => [
        '-c',
        await variant('mismatch', { extraLoft: 'signing_key_name = "other-name-1"' }),
        '--upload-path',
        '/etc',
      ],
    },
    {
      name: 'unreachable endpoint',
      code: 4,
      message: /reach|connect|refused/i,
      args: async () => {
        const port = await closedPort();
        const cfg = await variant('unreachable', {
          s3: { ...s3, endpoint: `http://127.0.0.1:${port}` },
          extraS3: 'max_attempts = 1',
        });
        return ['-c', cfg, '--upload-path', valid];
      },
    },
    {
      name: 'missing bucket',
      code: 4,
      message: /bucket/i,
      args: async () => [
        '-c',
        await variant('nobucket', { s3: { ...s3, bucket: 'no-such-bucket' } }),
        '--upload-path',
        valid,
      ],
    },
    {
      name: 'a path outside the store',
      code: 5,
      message: /not in the Nix store/,
      args: () => Promise.resolve(['-c', good, '--upload-path', '/etc']),
    },
    {
      name: 'a store path that is not valid',
      code: 5,
      message: /not valid|invalid/i,
      args: () => Promise.resolve(['-c', good, '--upload-path', `/nix/store/${'a'.repeat(32)}-not-there`]),
    },
  ];

  for (const c of cases) {
    test(`${c.name}: exit ${c.code}`, async (t) => {
      if (!requireNix(t)) return;
      const run = await runLoft(await c.args());
      assert.equal(run.code, c.code, `${run.stdout}\n${run.stderr}`);
      const text = run.stdout + run.stderr;
      assert.match(text, c.message);
      assert.ok(!/\n\s+at .+:\d+:\d+/.test(text), `no stack trace:\n${text}`);
      const loftLines = run.stderr.split('\n').filter((l) => l.startsWith('loft: '));
      assert.ok(loftLines.length <= 1, run.stderr);
    });
  }
});
