// Paths `--upload-path` must refuse, against the built CLI: outside the store, escaping it with ..
// or a symlink, not registered with Nix, malformed hash parts, and odd bytes (newline, space, NUL,
// bytes that are not UTF-8, given on the command line or on stdin). Each path is reported on one
// `failed PATH: reason` line, exit 5 (src/errors.ts ExitCode.nix), and the bucket stays as it was.
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describeBadInput, type BadInputCase, type BadInputEnv } from '../helpers/bad-input-table.js';

const HASH = 'a'.repeat(32);

function pathCase(
  name: string,
  message: RegExp,
  path: (e: BadInputEnv) => Promise<string> | string,
  todo?: string,
): BadInputCase {
  return {
    name,
    code: 5,
    message,
    args: async (e) => ['-c', e.good, '--upload-path', await path(e)],
    ...(todo ? { todo } : {}),
  };
}

function stdinCase(name: string, message: RegExp, stdin: Buffer, todo?: string): BadInputCase {
  return {
    name: `${name} (stdin)`,
    code: 5,
    message,
    args: (e) => ['-c', e.good, '--upload-path', '-'],
    stdin,
    ...(todo ? { todo } : {}),
  };
}

const cases: BadInputCase[] = [
  pathCase(
    'a path outside the store',
    /^failed \/etc: \/etc is not in the Nix store \(\/nix\/store\)$/,
    () => '/etc',
  ),
  pathCase('the store directory itself', /^failed \/nix\/store: .*not in the Nix store/, () => '/nix/store'),
  pathCase('escaping the store with ..', /is not in the Nix store/, (e) => `/nix/store/../${e.dir.slice(1)}`),
  pathCase(
    'a symlink out of the store',
    /^failed .*link-out: .*link-out is not in the Nix store/,
    async (e) => {
      const link = join(e.dir, 'link-out');
      await symlink('/etc', link).catch(() => undefined);
      return link;
    },
  ),
  pathCase('a dangling symlink into the store', /^failed .*dangling: .*does not exist$/, async (e) => {
    const link = join(e.dir, 'dangling');
    await symlink(`/nix/store/${HASH}-gone`, link).catch(() => undefined);
    return link;
  }),
  pathCase(
    'a relative path that does not exist',
    /^failed result: result is not in the Nix store .*does not exist$/,
    () => 'result',
  ),
  pathCase('an empty path', /^failed : +is not in the Nix store/, () => ''),
  pathCase(
    'a store path Nix does not know',
    /^failed \/nix\/store\/a{32}-not-there: .*not valid/,
    () => `/nix/store/${HASH}-not-there`,
  ),
  pathCase(
    'a hash part outside nix base-32',
    /hash part has characters outside nix base-32$/,
    () => `/nix/store/${'e'.repeat(32)}-x`,
  ),
  pathCase('a hash part too short', /is not a valid store path/, () => '/nix/store/abc-x'),
  pathCase(
    'a name that looks like an option',
    /^failed \/nix\/store\/a{32}--help: .*not valid/,
    () => `/nix/store/${HASH}--help`,
  ),
  pathCase(
    'a space in the name',
    /^failed \/nix\/store\/a{32}-has space: .*the name may only hold/,
    () => `/nix/store/${HASH}-has space`,
  ),
  pathCase(
    'a space outside the store (existing directory)',
    /^failed .*with space: .*with space is not in the Nix store/,
    async (e) => {
      await mkdir(join(e.dir, 'with space'), { recursive: true });
      return join(e.dir, 'with space');
    },
  ),
  pathCase(
    'a newline in the name',
    /^failed "\/nix\/store\/a{32}-a\\nb": .*the name may only hold/,
    () => `/nix/store/${HASH}-a\nb`,
  ),
  stdinCase(
    'bytes that are not UTF-8',
    /^failed \/nix\/store\/a{32}-a\uFFFDb: .*the name may only hold/,
    Buffer.concat([Buffer.from(`/nix/store/${HASH}-a`), Buffer.from([0xff]), Buffer.from('b\n')]),
  ),
  stdinCase('a NUL byte', /^failed "\/tmp\/a\\u0000b": .*not in the Nix store/, Buffer.from('/tmp/a\0b\n')),
  stdinCase(
    'an option-looking word',
    /^failed --force-scan: --force-scan is not in the Nix store/,
    Buffer.from('--force-scan\n'),
  ),
  {
    ...pathCase('a bad path with --dry-run', /^failed \/etc: /, () => '/etc'),
    args: (e) => ['-c', e.good, '--dry-run', '--upload-path', '/etc'],
  },
];

describeBadInput('paths loft must refuse: one line each, exit 5, the bucket untouched', 'bad-paths', cases);
