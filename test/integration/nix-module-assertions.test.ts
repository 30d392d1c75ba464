// The assertions the three modules make before a switch, evaluated by the real module system
// (nix/tests/eval-module.nix): each mistake makes its assertion fail, naming the option, on every
// module where it can happen; a configuration without mistakes fails none (nix-module-eval.test.ts).
// Needs LOFT_NIXPKGS_LIB (CI sets it); without it these tests skip and say why.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { evalModule, nixpkgsLib, type ModuleKind, type Table } from '../helpers/nix-module.js';

const BUCKET = { s3: { bucket: 'b', endpoint: 'http://127.0.0.1:3900' } };
const IN_STORE = '/nix/store/00000000000000000000000000000000-secret';

interface Case {
  name: string;
  kinds: ModuleKind[];
  settings: Table;
  expected: RegExp;
  /** Messages that must not appear (the neighbouring assertion stays quiet). */
  quiet?: RegExp;
  nix?: Table;
}

const loft = (settings: Table): Table => ({ services: { loft: settings } });
const cases: Case[] = [
  {
    name: 'a secret file of the default instance inside /nix/store',
    kinds: ['nixos', 'darwin'],
    settings: loft({ enable: true, ...BUCKET, signingKeyPath: IN_STORE }),
    expected: /^services\.loft\.signingKeyPath points into the Nix store \(\/nix\/store\//,
  },
  {
    name: "a secret file of a cache inside /nix/store (an S3 key, an HTTP token, a header's file)",
    kinds: ['nixos', 'darwin', 'home-manager'],
    settings: loft({
      caches: {
        a: { s3: { ...BUCKET.s3, accessKeyFile: IN_STORE, secretKeyFile: '/run/s' } },
        b: { http: { url: 'https://c.example.org', tokenFile: IN_STORE } },
        c: { ...BUCKET, s3: { ...BUCKET.s3, extraHeadersFile: { 'X-S': IN_STORE } } },
      },
    }),
    expected:
      /services\.loft\.caches\.a\.s3\.accessKeyFile points into the Nix store[^]*caches\.b\.http\.tokenFile points into[^]*caches\.c\.s3\.extraHeadersFile\."X-S" points into/,
  },
  {
    name: 'the post-build hook without an uploader',
    kinds: ['nixos', 'darwin'],
    settings: loft({ ...BUCKET, postBuildHook: { enable: true } }),
    expected: /^services\.loft\.postBuildHook\.enable needs an uploader/,
  },
  {
    name: 'the post-build hook when nix-darwin does not manage Nix (nix.settings would be ignored)',
    kinds: ['darwin'],
    settings: loft({ enable: true, ...BUCKET, postBuildHook: { enable: true } }),
    nix: { enable: false },
    expected:
      /^services\.loft\.postBuildHook\.enable sets nix\.settings\.post-build-hook, which nix-darwin writes only with nix\.enable = true/,
  },
  {
    name: "a cache in the default instance's state directory",
    kinds: ['nixos', 'darwin'],
    settings: loft({
      enable: true,
      ...BUCKET,
      caches: { a: { ...BUCKET, stateDirectory: '/var/lib/loft' } },
    }),
    expected: /^services\.loft and services\.loft\.caches\.a share the state directory/,
  },
  {
    name: 'two caches in one state directory, each with its own database',
    kinds: ['nixos', 'darwin', 'home-manager'],
    settings: loft({
      caches: {
        a: { ...BUCKET, stateDirectory: '/var/lib/shared', localCachePath: '/var/lib/shared/a.db' },
        b: { ...BUCKET, stateDirectory: '/var/lib/shared/b', localCachePath: '/var/lib/shared/b/b.db' },
      },
    }),
    expected: /^services\.loft\.caches\.a and services\.loft\.caches\.b share the state directory/,
    quiet: /share the database/,
  },
  {
    name: 'two caches on one database',
    kinds: ['nixos', 'darwin', 'home-manager'],
    settings: loft({
      caches: {
        a: { ...BUCKET, stateDirectory: '/var/lib/shared' },
        b: { ...BUCKET, stateDirectory: '/var/lib/shared' },
      },
    }),
    expected:
      /^services\.loft\.caches\.a and services\.loft\.caches\.b share the database \/var\/lib\/shared\/cache\.db/,
  },
  {
    name: 'a state directory systemd cannot create',
    kinds: ['nixos'],
    settings: loft({
      enable: true,
      ...BUCKET,
      stateDirectory: '/srv/loft',
      localCachePath: '/srv/loft/cache.db',
    }),
    expected: /^services\.loft\.stateDirectory must be under \/var\/lib/,
  },
  {
    name: 'a cache name that cannot be a unit name',
    kinds: ['nixos', 'darwin', 'home-manager'],
    settings: loft({ caches: { 'a b': BUCKET } }),
    expected: /^services\.loft\.caches\."a b": the name becomes the unit/,
  },
  {
    name: "a database outside the instance's state directory",
    kinds: ['nixos', 'darwin', 'home-manager'],
    settings: loft({ caches: { a: { ...BUCKET, localCachePath: '/srv/a.db' } } }),
    expected: /^services\.loft\.caches\.a\.localCachePath must be inside /,
  },
  {
    name: 'HTTP Basic authentication with a user and no password file',
    kinds: ['nixos', 'darwin', 'home-manager'],
    settings: loft({ caches: { a: { http: { url: 'https://c.example.org', user: 'alice' } } } }),
    expected: /^services\.loft\.caches\.a\.http\.user and http\.passwordFile go together/,
  },
  {
    name: 'two ways to log in to an HTTP cache',
    kinds: ['nixos', 'darwin', 'home-manager'],
    settings: loft({
      caches: {
        a: {
          http: { url: 'https://c.example.org', tokenFile: '/run/secrets/t', netrcFile: '/run/secrets/n' },
        },
      },
    }),
    expected:
      /^services\.loft\.caches\.a\.http: http\.tokenFile, http\.netrcFile are different ways to log in/,
  },
];

describe('assertions before a switch', () => {
  for (const c of cases) {
    test(c.name, async (t) => {
      const lib = nixpkgsLib(t);
      if (!lib) return;
      for (const kind of c.kinds) {
        const settings = c.nix ? { ...c.settings, nix: c.nix } : c.settings;
        const { failed } = await evalModule(lib, kind, settings);
        const text = failed.join('\n');
        assert.ok(
          failed.some((m) => c.expected.test(m)) || c.expected.test(text),
          `${kind}: expected ${c.expected}, got ${JSON.stringify(failed)}`,
        );
        if (c.quiet) assert.ok(!c.quiet.test(text), `${kind}: ${c.quiet} fired: ${text}`);
      }
    });
  }
});
