// The npm dependency plan for the Nix build, evaluated with the machine's Nix: nix/npm-deps.nix,
// given the real package-lock.json, picks exactly the packages npm installed here, at the same
// versions, and nix/fetch-npm-tarball.nix makes each one a fixed-output derivation pinned by the
// lockfile's sha512 integrity (the lockfile has no `resolved` URLs: see nix/README.md).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nixEval, nixPath, ROOT, type Table } from '../helpers/nix-module.js';
import { requireNix } from '../helpers/nix-env.js';

describe('npm dependencies for the Nix build', () => {
  test('the plan from package-lock.json is exactly what npm installed on this machine', async (t) => {
    if (!requireNix(t)) return;
    const plan = await nixEval<{
      keys: string[];
      versions: Record<string, string>;
      deps: Record<string, string>;
      resolved: Record<string, string | null>;
    }>(
      `let lock = builtins.fromJSON (builtins.readFile ${nixPath('package-lock.json')});
           d = import ${nixPath('nix/npm-deps.nix')} {
             package = builtins.fromJSON (builtins.readFile ${nixPath('package.json')}); packageLock = lock;
             platform = { os = "${process.platform}"; cpu = "${process.arch}"; };
             fetchTarball = a: "/nix/store/fake-" + a.integrity; };
       in { keys = builtins.attrNames d.tarballs; versions = builtins.mapAttrs (_: t: t.version) d.tarballs;
            deps = d.package.dependencies // d.package.devDependencies;
            resolved = builtins.mapAttrs (_: e: e.resolved or null) d.packageLock.packages; }`,
    );
    const installed = Object.keys(plan.resolved).filter(
      (k) => k !== '' && existsSync(join(ROOT, k, 'package.json')),
    );
    assert.deepEqual(plan.keys, installed.sort());
    for (const key of plan.keys) {
      const { version } = JSON.parse(readFileSync(join(ROOT, key, 'package.json'), 'utf8')) as {
        version: string;
      };
      assert.equal(plan.versions[key], version, key);
      assert.match(plan.resolved[key] ?? '', /^file:\/nix\/store\/fake-sha512-/, key);
    }
    for (const [name, spec] of Object.entries(plan.deps))
      assert.equal(spec, plan.resolved[`node_modules/${name}`], name);
  });

  test('each tarball is a fixed-output derivation pinned by the lockfile integrity', async (t) => {
    if (!requireNix(t)) return;
    const drv = await nixEval<Table>(
      `let e = (builtins.fromJSON (builtins.readFile ${nixPath('package-lock.json')})).packages."node_modules/@aws-sdk/client-s3";
           d = import ${nixPath('nix/fetch-npm-tarball.nix')} { system = builtins.currentSystem; shell = "/bin/sh"; path = "/usr/bin:/bin"; }
             { name = "@aws-sdk/client-s3"; inherit (e) version integrity; };
       in { inherit (d) name spec outputHash outputHashMode impureEnvVars; want = e.integrity; }`,
    );
    assert.equal(drv['outputHash'], drv['want']);
    assert.match(String(drv['outputHash']), /^sha512-/);
    assert.match(String(drv['name']), /^npm-aws-sdk-client-s3-[0-9.]+\.tgz$/);
    assert.match(String(drv['spec']), /^@aws-sdk\/client-s3@[0-9.]+$/);
    assert.deepEqual([drv['outputHashMode'], drv['impureEnvVars']], ['flat', ['npm_config_registry']]);
  });
});
