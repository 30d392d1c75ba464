// The Nix packaging's shape and services.loft's options, checked with the machine's Nix (2.8, no
// nixpkgs): every .nix file parses; the flake has the outputs users expect; module.nix declares the
// original Loft's options with its defaults and loft's limits; every option lands on a key loft's
// config loader reads, and every key is reachable (by an option, by extraConfig, or refused by name).
// Building the package and the NixOS VM test (nix/tests/vm.nix) need nixpkgs: see nix/README.md.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseCli } from '../../src/cli/program.js';
import * as schema from '../../src/config/schema.js';
import { LIMITS, LOFT_KEYS, S3_KEYS, LOCAL_KEYS } from '../../src/config/schema.js';
import {
  BUCKET,
  changedKeys,
  field,
  loadOptions,
  loadRendered,
  nested,
  nixEval,
  nixPath,
  render,
  renderAll,
  ROOT,
  type Table,
} from '../helpers/nix-module.js';
import { nixBin, requireNix } from '../helpers/nix-env.js';

// Keys of loft.toml that another change adds to loft's loader in the same round as these options:
// [http] (which the schema is expected to export as HTTP_KEYS) and three [loft] switches. Until the
// loader reads them, this test takes them from here; afterwards from the schema.
const PENDING_HTTP_KEYS = [
  'url',
  'user',
  'password_file',
  'token_file',
  'netrc_file',
  'extra_headers',
  'extra_headers_file',
  'ca_file',
  'client_cert_file',
  'client_key_file',
];
const PENDING_LOFT_KEYS = ['upload_logs', 'write_nar_listing', 'index_debug_info'];
const httpKeys = (): readonly string[] =>
  (schema as unknown as Record<string, readonly string[] | undefined>)['HTTP_KEYS'] ?? PENDING_HTTP_KEYS;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'loft-nix-module-options-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('Nix files', () => {
  test('every .nix file in the repository parses', async (t) => {
    if (!requireNix(t)) return;
    const found: string[] = [];
    const walk = (d: string): void => {
      for (const name of readdirSync(d)) {
        const p = join(d, name);
        if (['node_modules', 'dist', '.git'].includes(name)) continue;
        if (statSync(p).isDirectory()) walk(p);
        else if (name.endsWith('.nix')) found.push(relative(ROOT, p));
      }
    };
    walk(ROOT);
    const expected = [
      'flake.nix',
      'nix/package.nix',
      'nix/module.nix',
      'nix/config-toml.nix',
      'nix/npm-deps.nix',
      'nix/fetch-npm-tarball.nix',
      'nix/tests/vm.nix',
      'nix/tests/module-options.nix',
      'nix/tests/flake-outputs.nix',
      'nix/options.nix',
      'nix/instances.nix',
      'nix/secret-files.nix',
      'nix/systemd-hardening.nix',
      'nix/darwin-module.nix',
      'nix/home-manager-module.nix',
      'nix/tests/eval-module.nix',
      'templates/default.nix',
      'templates/nixos/flake.nix',
      'templates/darwin/flake.nix',
      'templates/home-manager/flake.nix',
      'templates/ci/flake.nix',
    ];
    for (const f of expected) assert.ok(found.includes(f), `${f} is missing`);
    for (const f of found) await nixBin(['nix-instantiate', '--parse', join(ROOT, f)]);
  });

  test('the flake offers the package, overlay, module, dev shell, checks and formatter', async (t) => {
    if (!requireNix(t)) return;
    const shape = await nixEval<Table>(`import ${nixPath('nix/tests/flake-outputs.nix')}`);
    const systems = ['aarch64-darwin', 'aarch64-linux', 'x86_64-darwin', 'x86_64-linux'];
    const each = (names: string[], linuxOnly: string[] = []) =>
      Object.fromEntries(
        systems.map((s) => [s, [...names, ...(s.endsWith('-linux') ? linuxOnly : [])].sort()]),
      );
    assert.deepEqual(shape, {
      inputs: ['nixpkgs'],
      outputs: [
        'checks',
        'darwinModules',
        'devShells',
        'formatter',
        'homeManagerModules',
        'nixosModules',
        'overlays',
        'packages',
        'templates',
      ],
      packages: each(['default', 'loft']),
      devShells: each(['default']),
      checks: each(['package', 'unit-tests'], ['vm']),
      formatter: systems,
      overlays: ['default'],
      overlayAdds: ['loft'],
      nixosModules: ['default', 'loft'],
      darwinModules: ['default', 'loft'],
      homeManagerModules: ['default', 'loft'],
      templates: Object.fromEntries(
        ['ci', 'darwin', 'home-manager', 'nixos'].map((n) => [
          n,
          { path: join(ROOT, 'templates', n), hasDescription: true },
        ]),
      ),
      moduleImports: Object.fromEntries(
        [
          ['nixosModules', 'nix/module.nix'],
          ['darwinModules', 'nix/darwin-module.nix'],
          ['homeManagerModules', 'nix/home-manager-module.nix'],
        ].map(([out, file]) => [out, { default: [join(ROOT, file!)], loft: [join(ROOT, file!)] }]),
      ),
    });
  });
});

describe('services.loft options', () => {
  test("names and defaults are the original Loft's (loft's additions aside)", async (t) => {
    const loaded = await loadOptions(t);
    if (!loaded) return;
    const { declared, x } = loaded;
    const byName = new Map(declared.map((o) => [o.path.join('.'), o]));
    const documented = [...Object.keys(x.originalDefaults), ...Object.keys(x.loftAdditions)].sort();
    assert.deepEqual([...byName.keys()].filter((n) => n !== 'package').sort(), documented);
    const expected = { ...x.originalDefaults, ...x.widened, ...x.loftAdditions };
    for (const [name, value] of Object.entries(expected)) {
      const option = byName.get(name)!;
      if (value === x.required) assert.ok(!('default' in option), `${name} should have no default`);
      else assert.deepEqual(option.default, value, name);
    }
    for (const name of Object.keys(x.widened)) assert.equal(x.originalDefaults[name], x.required, name);
  });

  test("integer bounds are loft's own limits", async (t) => {
    const loaded = await loadOptions(t);
    if (!loaded) return;
    const bounds = (name: string) => {
      let type = loaded.declared.find((o) => o.path.join('.') === name)!.type;
      while (type.name === 'nullOr') type = type.elem!;
      return { min: type.min, max: type.max };
    };
    assert.deepEqual(bounds('uploadThreads'), LIMITS.uploadThreads);
    assert.deepEqual(bounds('largeNarThresholdMb'), LIMITS.largeNarThresholdMb);
    assert.deepEqual(bounds('pruning.retentionDays'), LIMITS.pruneRetentionDays);
    assert.deepEqual(bounds('pruning.targetPercentage'), LIMITS.pruneTargetPercentage);
    assert.deepEqual(bounds('pruning.maxSizeGb'), { min: 1, max: LIMITS.pruneMaxSizeGb.max });
  });

  test('every option sets one key loft reads, and every key loft reads is reachable', async (t) => {
    const loaded = await loadOptions(t);
    if (!loaded) return;
    const { declared, x } = loaded;
    const known = [
      ...new Set([
        ...S3_KEYS.map((k) => `s3.${k}`),
        ...LOFT_KEYS.map((k) => `loft.${k}`),
        ...LOCAL_KEYS.map((k) => `local.${k}`),
        ...httpKeys().map((k) => `http.${k}`),
        ...PENDING_LOFT_KEYS.map((k) => `loft.${k}`),
      ]),
    ];
    const names = declared.map((o) => o.path.join('.')).filter((n) => !x.notConfigKeys.includes(n));
    // module-options.nix checks each sample against the option's declared type.
    for (const name of names) {
      assert.ok(name in x.samples, `option ${name} has no sample in nix/tests/option-expectations.nix`);
    }
    // An http.* option is rendered over an [http] cache, the others over a bucket.
    const baseOf = (n: string) =>
      n.startsWith('http.')
        ? { 'http.url': 'https://cache.example.org/base' }
        : { 's3.bucket': BUCKET.s3.bucket };
    const sets = names.map((n) => nested({ ...baseOf(n), [n]: x.samples[n] }));
    const [s3Unset, httpUnset, ...rendered] = await renderAll([
      nested(baseOf('s3')),
      nested(baseOf('http.url')),
      ...sets,
    ]);
    const mapped = names.map((name, i) => {
      const unset = name.startsWith('http.') ? httpUnset : s3Unset;
      const changed = changedKeys(unset!.settings, rendered[i]!.settings);
      assert.equal(changed.length, 1, `option ${name} changed ${JSON.stringify(changed)}`);
      assert.ok(known.includes(changed[0]!), `option ${name} writes ${changed[0]}, which loft does not read`);
      return changed[0]!;
    });
    const reachable = [...mapped, ...Object.keys(x.leftToExtraConfig), ...Object.keys(x.refused)];
    assert.equal(new Set(reachable).size, reachable.length, `a key is reached twice: ${reachable.join(' ')}`);
    assert.deepEqual(
      known.filter((k) => !reachable.includes(k)),
      [],
      'keys loft reads that nothing reaches',
    );
    assert.deepEqual(
      reachable.filter((k) => !known.includes(k)),
      [],
      'listed keys loft does not read',
    );
  });

  test('keys without an option reach loft through extraConfig', async (t) => {
    const loaded = await loadOptions(t);
    if (!loaded) return;
    const extra = loaded.x.leftToExtraConfig;
    const values = Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, v.value]));
    const { settings, problems } = await render({ ...BUCKET, extraConfig: nested(values) });
    assert.deepEqual(problems, []);
    const { config, warnings } = await loadRendered(dir, settings);
    assert.deepEqual(warnings, []);
    for (const [key, v] of Object.entries(extra)) assert.deepEqual(field(config, v.field), v.expected, key);
  });

  test('keys the module refuses to write are named in an assertion', async (t) => {
    const loaded = await loadOptions(t);
    if (!loaded) return;
    const { refused } = loaded.x;
    const keys = Object.keys(refused);
    const rendered = await renderAll(
      keys.map((k) => ({ ...BUCKET, extraConfig: nested({ [k]: refused[k] }) })),
    );
    keys.forEach((key, i) => {
      const { problems } = rendered[i]!;
      const table = key.split('.')[0]!;
      const named = problems.filter(
        (p) => p.includes(`extraConfig.${key}`) || p.includes(`extraConfig.${table}:`),
      );
      assert.equal(named.length, 1, `${key}: ${JSON.stringify(problems)}`);
    });
  });

  test('debug is the --debug flag of the command line', async (t) => {
    if (!requireNix(t)) return;
    const [off, on] = await renderAll([BUCKET, { ...BUCKET, debug: true }]);
    for (const [r, debug] of [
      [off!, false],
      [on!, true],
    ] as const) {
      const cli = parseCli(['--config', 'x.toml', ...r.cliFlags], '0', () => undefined);
      assert.equal(cli?.debug, debug);
    }
  });
});
